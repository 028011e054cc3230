"""
### Stop the micro-batch pipeline, in order

1. the ingestors stop pulling and flush what they accepted to Kafka;
2. the streaming job processes everything already in Kafka (the last micro-batches finish);
3. the query stops and the `tormenta_microbatch` run ends with success.

This run succeeds once every component confirmed its stop; nothing is left running.
"""

from __future__ import annotations

import json

import pendulum
from airflow.sdk import Param, dag, task

from tormenta import alerts, microbatch


@dag(
    dag_id=microbatch.STOP_DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"on_failure_callback": alerts.note_failure},  # the reason goes into the run's note
    doc_md=__doc__,
    tags=["tormenta", "micro-batch"],
    params={
        "namespace": Param("tormenta", type="string", pattern=microbatch.NAMESPACE_PATTERN, title="Namespace",
                           description="Namespace of the pipeline to stop."),
        "reason": Param("stopped from the Airflow UI", type="string", maxLength=200, title="Reason",
                        description="Recorded with the stop request."),
    },
)  # fmt: skip
def tormenta_microbatch_stop():
    @task
    def request_stop(params=None, dag_run=None, dag=None) -> str | None:
        from tormenta.control import ControlPlane
        from tormenta.providers.hbase import HBaseHook
        from tormenta.triggers import fail_on_bad_trigger

        fail_on_bad_trigger(dag_run.conf, dag.params)  # params holds the conf's keys too
        control = ControlPlane(HBaseHook().endpoint(), params["namespace"])
        run_id = control.active_run()
        if run_id is None or control.state(run_id)["phase"] == "stopped":
            print(f"no running micro-batch pipeline in namespace {params['namespace']!r}")
            return None
        control.request_stop(run_id, params["reason"])
        print(f"stop requested for run {run_id}")
        return run_id

    @task(execution_timeout=pendulum.duration(minutes=20))
    def wait_stopped(target_run: str | None, params=None, ti=None) -> dict | None:
        """Wait for the run's ordered stop; fail at once, with the reason, when it cannot come."""
        import time

        from airflow.sdk.exceptions import AirflowFailException

        from tormenta.control import ControlPlane
        from tormenta.providers.hbase import HBaseHook

        if target_run is None:
            return None
        control = ControlPlane(HBaseHook().endpoint(), params["namespace"])
        while (state := control.state(target_run))["phase"] != "stopped":
            run_state = ti.get_dagrun_state(dag_id=microbatch.DAG_ID, run_id=target_run)
            tasks = ti.get_task_states(dag_id=microbatch.DAG_ID, run_ids=[target_run]).get(target_run, {})
            stalled = microbatch.stop_stalled(state, run_state, tasks.get("supervise"))
            if stalled:
                raise AirflowFailException(f"the stop of {target_run} cannot complete: {stalled}")
            print(f"phase {state['phase']}; stopped so far: {sorted(state['stopped'])}")
            time.sleep(5)
        print(f"stopped: {sorted(state['stopped'])}")
        if state["failed"]:
            raise AirflowFailException(f"{target_run} stopped, but these parts failed: "
                                       f"{json.dumps(state['failed'], sort_keys=True)}")  # fmt: skip
        return state

    wait_stopped(request_stop())


tormenta_microbatch_stop()

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
from airflow.sdk import dag, task

from tormenta import microbatch
from tormenta.providers.dags import dag_args


@dag(**dag_args(microbatch.STOP_DAG_ID, __doc__, "micro-batch", params=microbatch.stop_params()))
def tormenta_microbatch_stop():
    @task
    def request_stop(params=None, dag_run=None, dag=None) -> str | None:
        from tormenta.control import ControlPlane
        from tormenta.providers.hbase import HBaseHook
        from tormenta.triggers import fail_on_bad_trigger

        fail_on_bad_trigger(dag_run.conf, dag.params)  # params holds the conf's keys too
        run_id = ControlPlane(HBaseHook().endpoint(), params["namespace"]).stop_active(params["reason"])
        print(f"stop requested for run {run_id}" if run_id else
              f"no running micro-batch pipeline in namespace {params['namespace']!r}")  # fmt: skip
        return run_id

    @task(execution_timeout=pendulum.duration(minutes=20))
    def wait_stopped(target_run: str | None, params=None, ti=None) -> dict | None:
        """Wait for the run's ordered stop; fail at once, with the reason, when it cannot come."""
        from airflow.sdk.exceptions import AirflowFailException

        from tormenta.control import ControlPlane, StopStalled
        from tormenta.providers.hbase import HBaseHook

        if target_run is None:
            return None

        def stalled(state: dict) -> str | None:
            run_state = ti.get_dagrun_state(dag_id=microbatch.DAG_ID, run_id=target_run)
            tasks = ti.get_task_states(dag_id=microbatch.DAG_ID, run_ids=[target_run]).get(target_run, {})
            return microbatch.stop_stalled(state, run_state, tasks.get("supervise"))

        control = ControlPlane(HBaseHook().endpoint(), params["namespace"])
        try:
            state = control.wait_stopped(target_run, stalled=stalled, progress=lambda st: print(
                f"phase {st['phase']}; stopped so far: {sorted(st['stopped'])}"))  # fmt: skip
        except StopStalled as exc:
            raise AirflowFailException(str(exc)) from None
        print(f"stopped: {sorted(state['stopped'])}")
        if state["failed"]:
            raise AirflowFailException(f"{target_run} stopped, but these parts failed: "
                                       f"{json.dumps(state['failed'], sort_keys=True)}")  # fmt: skip
        return state

    wait_stopped(request_stop())


tormenta_microbatch_stop()

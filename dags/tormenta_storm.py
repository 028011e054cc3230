"""
### A storm on demand

A scandal on one politician's page of the **running** `tormenta_microbatch` pipeline: that page's
comments per second are multiplied by *factor* for *minutes*, without restarting anything. The
run's social ingestors that read the page pick it up from the control plane within seconds, and
go back to the page's rate when the storm ends. Spark's `maxOffsetsPerTrigger` (the run's *max
records per micro-batch*) bounds every batch while the backlog lasts.

The comparison page shows the storm on the run's charts and how long latency took to come back
under twice the interval.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from tormenta import microbatch
from tormenta.providers.dags import dag_args


@dag(**dag_args(microbatch.STORM_DAG_ID, __doc__, "micro-batch", params=microbatch.storm_params()))
def tormenta_storm():
    @task
    def storm(params=None, dag_run=None, dag=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from tormenta.control import ControlPlane
        from tormenta.providers.hbase import HBaseHook
        from tormenta.triggers import fail_on_bad_trigger

        fail_on_bad_trigger(dag_run.conf, dag.params)
        control = ControlPlane(HBaseHook().endpoint(), params["namespace"])
        try:
            doc = microbatch.start_storm(control, params["page"], int(params["factor"]), float(params["minutes"]))
        except microbatch.StormError as exc:
            raise AirflowFailException(str(exc)) from None
        print(f"storm on {doc['page']} x{doc['factor']} for run {doc['run_id']} until {doc['until_ms']}")
        return doc

    storm()


tormenta_storm()

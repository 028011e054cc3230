"""
### Triggered micro-batch runs, every 5 minutes

Unpause this DAG to process a namespace's stream as *triggered* runs instead of one always-on
run: every 5 minutes it starts a `tormenta_microbatch` run with mode **triggered**, which takes
every record the namespace's topics hold (put there by ingestors running outside Airflow), in
micro-batches of at most *max records*, then ends; this run waits for it and ends as it did.

It is paused when created. Unpaused for the first time, its first run is at the next 5-minute
mark; unpaused again later, it starts the most recent mark it missed at once. Like any newer run, a triggered run takes over from a running
always-on run of the same namespace (the always-on run stops in order first).
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag
from airflow.timetables.trigger import CronTriggerTimetable

from tormenta import microbatch
from tormenta.providers.dags import dag_args

# No start date and run_immediately=False: the first unpause waits for the next 5-minute mark (with
# a start date in the past, the scheduler would start the most recent one at once).
SCHEDULE = CronTriggerTimetable(microbatch.TRIGGERED_SCHEDULE, timezone="UTC", run_immediately=False)


@dag(**{**dag_args(microbatch.TRIGGERED_DAG_ID, __doc__, "micro-batch", schedule=SCHEDULE,
                   params=microbatch.triggered_params(), is_paused_upon_creation=True), "start_date": None})
def tormenta_microbatch_triggered():
    TriggerDagRunOperator(
        task_id="triggered_run",
        trigger_dag_id=microbatch.DAG_ID,
        conf=microbatch.triggered_conf("{{ params.namespace }}"),
        wait_for_completion=True,  # this run's state is the triggered run's
        poke_interval=10,
        allowed_states=["success"],
        failed_states=["failed"],
    )


tormenta_microbatch_triggered()

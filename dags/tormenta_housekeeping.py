"""
### Tormenta housekeeping (hourly)

Keeps the platform's own files bounded (Kafka and HBase bound theirs with retention and TTLs):

- service logs in `var/logs/*.log` larger than `TORMENTA_LOG_MAX_MB` (100) are rotated, keeping
  `TORMENTA_LOG_KEEP` (3) copies;
- Airflow task logs older than `TORMENTA_TASK_LOG_DAYS` (14) are deleted;
- batch windows' landing and warehouse folders untouched for `TORMENTA_WINDOW_DAYS` (7) are
  deleted (re-running a window lands it again).

The run's log lists what it rotated and deleted. Unpaused from the start.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from tormenta import alerts
from tormenta.housekeeping import DAG_ID


@dag(
    dag_id=DAG_ID,
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args={"on_failure_callback": alerts.note_failure},
    doc_md=__doc__,
    tags=["tormenta", "housekeeping"],
)
def tormenta_housekeeping():
    @task
    def sweep() -> dict:
        import logging

        from tormenta.housekeeping import sweep as run_sweep
        from tormenta.settings import load

        s = load()
        done = run_sweep(s.home, s.logs_dir)
        logging.getLogger("airflow.task").info("housekeeping: %s", done)
        return done

    sweep()


tormenta_housekeeping()

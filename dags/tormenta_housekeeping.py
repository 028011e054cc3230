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

from airflow.sdk import dag, task

from tormenta.housekeeping import DAG_ID
from tormenta.providers.dags import dag_args


@dag(**dag_args(DAG_ID, __doc__, "housekeeping", schedule="@hourly", is_paused_upon_creation=False))
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

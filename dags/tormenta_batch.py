"""
### Tormenta batch archetype (fixed window)

`big file → ingest → store (raw + Parquet) → process (N parts, the same business rules) → HBase`

Runs daily at 01:00 UTC on the previous UTC day (no catch-up), or on any window you trigger it
with. **Ingest**: the window's records land in `var/landing/<window>/` — from Kafka by record
timestamp (the events the streaming path received; Kafka is the archive) or from a file the
source client writes (`source = file`). **Store**: raw JSON lines and Parquet split into
*parts*. **Process**: a Spark job calls the same `process_batch` as the streaming job on the
parts in parallel, with the cores of its `tormenta_spark` pool slots (it queues for the cores the
streaming job does not hold instead of oversubscribing them).
**Record**: start, end, rows and duration go to `<namespace>_batch_runs`; re-running a window
gives identical HBase content.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from tormenta import batch, capacity
from tormenta.jobs import HBASE_FROM_CONNECTION, LandArgs, ProcessArgs
from tormenta.providers.dags import dag_args
from tormenta.providers.spark import SparkJobOperator


def window_(key: str) -> str:
    """A template for one value of the window task's result."""
    return "{{ ti.xcom_pull(task_ids='window')['" + key + "'] }}"


@dag(**dag_args(batch.DAG_ID, __doc__, "batch", schedule="0 1 * * *", params=batch.params()))
def tormenta_batch():
    @task
    def window(params=None, dag_run=None, run_id=None, dag=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from tormenta.settings import load
        from tormenta.triggers import fail_on_bad_trigger

        fail_on_bad_trigger(dag_run.conf, dag.params)  # params holds the conf's keys too
        run_date = dag_run.logical_date or dag_run.run_after
        try:
            w = batch.resolve_window(params["window_start"], params["window_end"], run_date)
        except ValueError as exc:
            raise AirflowFailException(f"bad window: {exc}") from None
        s = load()
        out = {**w.as_dict(), **batch.paths(s.home, w, run_id, s.landing_root, s.warehouse_root)}
        print(f"window {out['start']} -> {out['end']} ({w.label}), {params['parts']} part(s)")
        return out

    @task
    def ingest(win: dict, params=None) -> dict:
        """source = file: the source client writes the window's big file into the landing folder."""
        if params["source"] != "file":
            return {"source": "kafka", "note": "records are read from the Kafka archive by the store step"}
        from kinds.social.source import write_window_file

        w = batch.Window(win["start_ms"], win["end_ms"])
        n = write_window_file(win["source_file"], w, int(params["file_events"]), params["source_namespace"])
        return {"source": "file", "file": win["source_file"], "events": n}

    def batch_job(task_id: str, args, **kwargs) -> SparkJobOperator:
        """A step of spark_jobs/batch.py, on the Spark pool with the batch's cores, metered."""
        return SparkJobOperator(task_id=task_id, job="batch", pool=capacity.SPARK_POOL,
                                pool_slots=capacity.batch_cores(), meter_namespace="{{ params.namespace }}",
                                application_args=args.to_argv(), **kwargs)  # fmt: skip

    store = batch_job(
        "store",
        LandArgs(
            source="{{ params.source }}", bootstrap="{{ kafka_bootstrap() }}",
            topics="{{ topics(params.source_namespace) }}", file=window_("source_file"),
            start_ms=window_("start_ms"), end_ms=window_("end_ms"), raw_dir=window_("raw_dir"),
            parquet_dir=window_("parquet_dir"), parts="{{ params.parts }}", report=window_("land_report"),
        ),
    )  # fmt: skip

    process = batch_job(
        "process",
        ProcessArgs(
            parquet_dir=window_("parquet_dir"), namespace="{{ params.namespace }}",
            source_namespace="{{ params.source_namespace }}", label=window_("label"), seq=window_("seq"),
            parts="{{ params.parts }}", report=window_("process_report"), **HBASE_FROM_CONNECTION,
        ),
        meter_services=True,
    )  # fmt: skip

    @task
    def record(win: dict, params=None, run_id=None) -> dict:
        import json
        from pathlib import Path

        from tormenta.providers.hbase import HBaseHook

        land = json.loads(Path(win["land_report"]).read_text())
        proc = json.loads(Path(win["process_report"]).read_text())
        rec = batch.run_record(batch.Window(win["start_ms"], win["end_ms"]), run_id, land, proc,
                               int(params["parts"]), params["source"])  # fmt: skip
        with HBaseHook().session() as conn:
            batch.store_run_record(conn, params["namespace"], rec)
        print(json.dumps(rec, indent=2, sort_keys=True))
        return rec

    win = window()
    ingest(win) >> store >> process >> record(win)


tormenta_batch()

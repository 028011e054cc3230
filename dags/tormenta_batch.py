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
gives identical HBase content. **Agree**: every aggregate both paths compute (social per minute
and per author, geo trips and zone events) is compared row by row with the micro-batch path's
for the window, once that path has processed past its end; a difference the window's edges do
not explain fails the task (`tormenta/agreement.py`).
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable, dag, task

from tormenta import batch, capacity
from tormenta.jobs import HBASE_FROM_CONNECTION, LandArgs, ProcessArgs
from tormenta.providers.announcements import AnnouncementTrigger
from tormenta.providers.dags import dag_args
from tormenta.providers.spark import SparkJobOperator


def window_(key: str) -> str:
    """A template for one value of the window task's result."""
    return "{{ ti.xcom_pull(task_ids='window')['" + key + "'] }}"


# A source client's announcement of a complete big file (``python -m ingestors.files``) becomes an
# event of this asset in Airflow's triggerer, and so a run of the DAG over exactly that file.
FILE_ANNOUNCED = Asset(batch.FILE_ASSET, watchers=[AssetWatcher(
    name="tormenta_batch_file_announcements",
    trigger=AnnouncementTrigger(topics=[batch.FILES_TOPIC], kafka_config_id=batch.FILES_CONN_ID),
)])  # fmt: skip
SCHEDULE = AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 1 * * *", timezone="UTC"), assets=FILE_ANNOUNCED)


@dag(**dag_args(batch.DAG_ID, __doc__, "batch", schedule=SCHEDULE, params=batch.params()))
def tormenta_batch():
    @task
    def window(params=None, dag_run=None, run_id=None, dag=None, triggering_asset_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from tormenta.settings import load
        from tormenta.triggers import fail_on_bad_trigger

        fail_on_bad_trigger(dag_run.conf, dag.params)  # params holds the conf's keys too
        s = load()
        payloads = [e.extra["payload"] for events in (triggering_asset_events or {}).values() for e in events
                    if (e.extra or {}).get("from_trigger")]  # fmt: skip
        if payloads:  # a run started by file announcements: the first file not processed yet
            from tormenta.providers.hbase import HBaseHook
            from tormenta.providers.kafka import bootstrap_servers

            with HBaseHook().session() as conn:
                pick = batch.pick_announced(payloads, s.home, lambda i: batch.processed_by(conn, params["namespace"], i))
            for reason in pick.refused:
                print(f"refused announcement: {reason}")
            for doc in pick.later:  # more than one new file in this run: the others get a run of their own
                batch.announce(bootstrap_servers(), doc)
                print(f"announced {doc['file']} again for a run of its own")
            if pick.file is None:
                if pick.refused and not pick.done:
                    raise AirflowFailException("no usable file announcement: " + "; ".join(pick.refused))
                reason = "already processed: " + "; ".join(pick.done)
                print(reason)  # Airflow logs a skip as "Skipping task." only
                raise AirflowSkipException(reason)
            w = batch.Window(pick.file["window"]["start_ms"], pick.file["window"]["end_ms"])
            out = {**w.as_dict(), **batch.paths(s.home, w, run_id, s.landing_root, s.warehouse_root),
                   "source": "file", "source_file": pick.file["file"], "file_id": pick.file["id"],
                   "source_namespace": pick.file["source_namespace"]}  # fmt: skip
            print(f"announced file {out['source_file']} ({pick.file['id'][:12]}), window {out['start']} -> {out['end']}")
            return out
        run_date = dag_run.logical_date or dag_run.run_after
        try:
            w = batch.resolve_window(params["window_start"], params["window_end"], run_date)
        except ValueError as exc:
            raise AirflowFailException(f"bad window: {exc}") from None
        out = {**w.as_dict(), **batch.paths(s.home, w, run_id, s.landing_root, s.warehouse_root),
               "source": params["source"], "file_id": None, "source_namespace": params["source_namespace"]}  # fmt: skip
        print(f"window {out['start']} -> {out['end']} ({w.label}), {params['parts']} part(s)")
        return out

    @task
    def ingest(win: dict, params=None) -> dict:
        """source = file: the source client writes the window's big file into the landing folder
        (an announced file is there already)."""
        if win["file_id"]:
            return {"source": "file", "file": win["source_file"], "announced": win["file_id"]}
        if win["source"] != "file":
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
            source=window_("source"), bootstrap="{{ kafka_bootstrap() }}",
            topics="{{ topics(params.source_namespace) }}", file=window_("source_file"),
            start_ms=window_("start_ms"), end_ms=window_("end_ms"), raw_dir=window_("raw_dir"),
            parquet_dir=window_("parquet_dir"), parts="{{ params.parts }}", report=window_("land_report"),
        ),
    )  # fmt: skip

    process = batch_job(
        "process",
        ProcessArgs(
            parquet_dir=window_("parquet_dir"), namespace="{{ params.namespace }}",
            source_namespace=window_("source_namespace"), label=window_("label"), seq=window_("seq"),
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
                               int(params["parts"]), win["source"])  # fmt: skip
        with HBaseHook().session() as conn:
            batch.store_run_record(conn, params["namespace"], rec)
            if win["file_id"]:  # a repeated announcement of this file will not run it again
                batch.mark_processed(conn, params["namespace"], win["file_id"], run_id, win["source_file"])
        print(json.dumps(rec, indent=2, sort_keys=True))
        return rec

    @task
    def agree(win: dict, rec: dict, params=None, run_id=None) -> dict:
        """Every aggregate both paths compute, for the window: fails on a difference the window's
        edges do not explain; skipped (with the reason) when there is no micro-batch path to compare."""
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from tormenta import agreement, microbatch
        from tormenta.providers.hbase import HBaseHook
        from tormenta.providers.kafka import bootstrap_servers

        hook = HBaseHook()
        if win["source"] == "file":
            reason = "the window's records came from a file the micro-batch path never read: nothing to compare"
        else:
            bootstrap = bootstrap_servers()
            reason = agreement.caught_up(
                hook, win["source_namespace"], win["end_ms"], timeout_s=60 * int(params["agree_wait_minutes"]),
                unread=lambda progress: microbatch.unread_before(bootstrap, progress, win["end_ms"]),
            )  # fmt: skip
        with hook.session() as conn:
            if reason is None:
                result = agreement.check(conn, win["source_namespace"], params["namespace"], win["start_ms"],
                                         win["end_ms"], win["label"])  # fmt: skip
                print("\n".join(agreement.lines(result)))
                if result["agree"] is None:
                    reason = "no aggregate rows in the window on either side"
            if reason is not None:
                result = {"agree": None, "why": reason, "compared": 0, "differ": 0, "aggregates": []}
            agreement.store(conn, params["namespace"], win["label"], run_id, result)
        if reason is not None:
            print(f"skipped: {reason}")  # Airflow logs a skip as "Skipping task." only
            raise AirflowSkipException(reason)
        if not result["agree"]:
            raise AirflowFailException(f"{result['differ']} of {result['compared']} aggregate rows differ between "
                                       "the batch window and the micro-batch path (see the rows above)")  # fmt: skip
        return {k: result[k] for k in ("compared", "same", "edge", "differ", "agree")}

    win = window()
    rec = record(win)
    ingest(win) >> store >> process >> rec
    agree(win, rec)


tormenta_batch()

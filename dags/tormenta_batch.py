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

import pendulum
from airflow.sdk import Param, dag, task

from tormenta import alerts, batch, capacity
from tormenta.microbatch import NAMESPACE_PATTERN
from tormenta.providers.spark import SparkJobOperator


@dag(
    dag_id=batch.DAG_ID,
    schedule="0 1 * * *",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"on_failure_callback": alerts.note_failure},  # the reason goes into the run's note
    doc_md=__doc__,
    tags=["tormenta", "batch"],
    params={
        "window_start": Param("", type="string", pattern=batch.ISO_MINUTE_PATTERN, title="Window start (UTC)",
                              description="ISO 8601 on a whole minute, e.g. 2026-11-26T14:00Z. Empty: the "
                                          "previous UTC day."),
        "window_end": Param("", type="string", pattern=batch.ISO_MINUTE_PATTERN, title="Window end (UTC)",
                            description="Exclusive. Empty together with the start: the previous UTC day."),
        "parts": Param(4, type="integer", minimum=1, maximum=256, title="Parallel parts",
                       description="The big file is split into this many parts, processed in parallel on "
                                   "the cores the tormenta_spark pool gives the job."),
        "source": Param("kafka", type="string", enum=["kafka", "file"], title="Source",
                        description="kafka: the window's records from the Kafka archive. file: a source "
                                    "client writes the window's big file (social comments)."),
        "file_events": Param(100_000, type="integer", minimum=1, maximum=50_000_000, title="Events in the file",
                             description="Only for source = file."),
        "source_namespace": Param("tormenta", type="string", pattern=NAMESPACE_PATTERN,
                                  title="Source namespace", description="Whose topics are read."),
        "namespace": Param("tormenta_batch", type="string", pattern=NAMESPACE_PATTERN, title="Results namespace",
                           description="HBase tables the batch results go to (next to the micro-batch ones)."),
    },
)  # fmt: skip
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
        w = batch.Window(win["start_ms"], win["end_ms"])
        n = batch.generate_source_file(win["source_file"], w, int(params["file_events"]), params["source_namespace"])
        return {"source": "file", "file": win["source_file"], "events": n}

    store = SparkJobOperator(
        task_id="store",
        job="batch",
        pool=capacity.SPARK_POOL,
        pool_slots=capacity.batch_cores(),
        meter_namespace="{{ params.namespace }}",
        application_args=[
            "land",
            "--source", "{{ params.source }}",
            "--bootstrap", "{{ conn.kafka_default.extra_dejson['bootstrap.servers'] }}",
            "--topics", "{{ params.source_namespace }}.social.comments,{{ params.source_namespace }}.geo.positions",
            "--file", "{{ ti.xcom_pull(task_ids='window')['source_file'] }}",
            "--start-ms", "{{ ti.xcom_pull(task_ids='window')['start_ms'] }}",
            "--end-ms", "{{ ti.xcom_pull(task_ids='window')['end_ms'] }}",
            "--raw-dir", "{{ ti.xcom_pull(task_ids='window')['raw_dir'] }}",
            "--parquet-dir", "{{ ti.xcom_pull(task_ids='window')['parquet_dir'] }}",
            "--parts", "{{ params.parts }}",
            "--report", "{{ ti.xcom_pull(task_ids='window')['land_report'] }}",
        ],
    )  # fmt: skip

    process = SparkJobOperator(
        task_id="process",
        job="batch",
        pool=capacity.SPARK_POOL,
        pool_slots=capacity.batch_cores(),
        meter_namespace="{{ params.namespace }}",
        meter_services=True,
        application_args=[
            "process",
            "--parquet-dir", "{{ ti.xcom_pull(task_ids='window')['parquet_dir'] }}",
            "--namespace", "{{ params.namespace }}",
            "--source-namespace", "{{ params.source_namespace }}",
            "--label", "{{ ti.xcom_pull(task_ids='window')['label'] }}",
            "--seq", "{{ ti.xcom_pull(task_ids='window')['seq'] }}",
            "--parts", "{{ params.parts }}",
            "--hbase-host", "{{ conn.hbase_default.host }}",
            "--hbase-port", "{{ conn.hbase_default.port }}",
            "--hbase-zookeeper", "{{ conn.hbase_default.extra_dejson.get('zookeeper_quorum') or conn.hbase_default.host ~ ':2181' }}",
            "--report", "{{ ti.xcom_pull(task_ids='window')['process_report'] }}",
        ],
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
        conn = HBaseHook().get_conn()
        try:
            batch.store_run_record(conn, params["namespace"], rec)
        finally:
            conn.close()
        print(json.dumps(rec, indent=2, sort_keys=True))
        return rec

    win = window()
    ingest(win) >> store >> process >> record(win)


tormenta_batch()

"""
### Tormenta smoke pipeline

Proves the platform end to end on the configured endpoints:
**produce** N events to Kafka → **Spark** reads them through the official Kafka connector and
writes one row per event to HBase → **verify** counts the rows.

Re-running a run is safe: rows are keyed by event id, so HBase ends up with the same content.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from tormenta import alerts
from tormenta.providers.spark import SparkJobOperator


@dag(
    dag_id="tormenta_smoke",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"on_failure_callback": alerts.note_failure},  # the reason goes into the run's note
    doc_md=__doc__,
    tags=["tormenta", "smoke"],
    params={
        "events": Param(500, type="integer", minimum=1, maximum=1_000_000,
                        title="Events", description="How many events to produce."),
    },
)
def tormenta_smoke():
    @task
    def produce(params=None, run_id=None) -> str:
        from airflow.sdk import BaseHook

        from tormenta import kafka, smoke

        bootstrap = BaseHook.get_connection("kafka_default").extra_dejson["bootstrap.servers"]
        kafka.ensure_topics(bootstrap, [smoke.topic()])
        tag = "".join(ch if ch.isalnum() else "_" for ch in run_id)
        smoke.produce_events(bootstrap, tag, int(params["events"]))
        return tag

    tag = produce()

    spark = SparkJobOperator(
        task_id="spark_kafka_to_hbase",
        job="smoke",
        application_args=[
            "--bootstrap", "{{ conn.kafka_default.extra_dejson['bootstrap.servers'] }}",
            "--topic", "tormenta.smoke",
            "--tag", "{{ ti.xcom_pull(task_ids='produce') }}",
            "--hbase-host", "{{ conn.hbase_default.host }}",
            "--hbase-port", "{{ conn.hbase_default.port }}",
        ],
    )  # fmt: skip

    @task
    def verify(tag: str, params=None) -> int:
        from tormenta.providers.hbase import HBaseHook
        from tormenta.smoke import count_rows

        conn = HBaseHook().get_conn()
        try:
            rows = count_rows(conn, tag)
        finally:
            conn.close()
        if rows != int(params["events"]):
            raise ValueError(f"expected {params['events']} rows in HBase for {tag}, found {rows}")
        return rows

    tag >> spark >> verify(tag)


tormenta_smoke()

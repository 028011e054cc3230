"""
### Tormenta smoke pipeline

Proves the platform end to end on the configured endpoints:
**produce** N events to Kafka → **Spark** reads them through the official Kafka connector and
writes one row per event to HBase → **verify** counts the rows.

Re-running a run is safe: rows are keyed by event id, so HBase ends up with the same content.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from tormenta import smoke
from tormenta.jobs import SmokeArgs
from tormenta.providers.dags import dag_args
from tormenta.providers.spark import SparkJobOperator


@dag(**dag_args(smoke.DAG_ID, __doc__, "smoke", params=smoke.params()))
def tormenta_smoke():
    @task
    def produce(params=None, run_id=None) -> str:
        from ingestors.sources.smoke import produce_events
        from tormenta.providers import kafka

        hook = kafka.KafkaHook()
        hook.ensure_topics([smoke.topic()])
        bootstrap = hook.bootstrap_servers()
        tag = "".join(ch if ch.isalnum() else "_" for ch in run_id)
        produce_events(bootstrap, tag, int(params["events"]))
        return tag

    tag = produce()

    spark = SparkJobOperator(
        task_id="spark_kafka_to_hbase",
        job="smoke",
        application_args=SmokeArgs(
            bootstrap="{{ kafka_bootstrap() }}", topic=smoke.TOPIC.name, tag="{{ ti.xcom_pull(task_ids='produce') }}",
            hbase_host="{{ hbase_host() }}", hbase_port="{{ hbase_port() }}", table=smoke.TABLE,
        ).to_argv(),
    )  # fmt: skip

    @task
    def verify(tag: str, params=None) -> int:
        from tormenta.providers.hbase import HBaseHook
        from tormenta.smoke import count_rows

        with HBaseHook().session() as conn:
            rows = count_rows(conn, tag)
        if rows != int(params["events"]):
            raise ValueError(f"expected {params['events']} rows in HBase for {tag}, found {rows}")
        return rows

    tag >> spark >> verify(tag)


tormenta_smoke()

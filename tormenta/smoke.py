"""The smoke pipeline: events to Kafka, Spark reads them through the connector, rows to HBase.

It proves the four systems work together; the real pipelines replace it as the main job.
"""

from __future__ import annotations

import logging

from tormenta.kafka import TopicSpec, durability

log = logging.getLogger(__name__)

DAG_ID = "tormenta_smoke"
TOPIC = TopicSpec("tormenta.smoke", partitions=3)


def params() -> dict:
    """The smoke DAG's trigger form."""
    from airflow.sdk import Param

    return {"events": Param(500, type="integer", minimum=1, maximum=1_000_000, title="Events",
                            description="How many events to produce.")}  # fmt: skip


def topic() -> TopicSpec:
    """The smoke topic with the deployment's replication and min.insync.replicas."""
    replication, config = durability()
    return TopicSpec(TOPIC.name, TOPIC.partitions, replication, config)
TABLE = "tormenta_smoke"
FAMILIES = {"d": {"max_versions": 1}}


def count_rows(conn, tag: str) -> int:
    """Rows of the smoke table whose key starts with ``tag``."""
    return sum(1 for _ in conn.table(TABLE).scan(row_prefix=f"{tag}-".encode(), columns=[b"d:seq"]))

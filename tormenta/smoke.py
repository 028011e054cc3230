"""The smoke pipeline: events to Kafka, Spark reads them through the connector, rows to HBase.

It proves the four systems work together; the real pipelines replace it as the main job.
"""

from __future__ import annotations

import json
import logging
import time

from tormenta.kafka import TopicSpec, durability

log = logging.getLogger(__name__)

TOPIC = TopicSpec("tormenta.smoke", partitions=3)


def topic() -> TopicSpec:
    """The smoke topic with the deployment's replication and min.insync.replicas."""
    replication, config = durability()
    return TopicSpec(TOPIC.name, TOPIC.partitions, replication, config)
TABLE = "tormenta_smoke"
FAMILIES = {"d": {"max_versions": 1}}


def produce_events(bootstrap: str, tag: str, count: int, timeout: float = 60.0) -> int:
    """Produce ``count`` keyed JSON events tagged ``tag``; return how many the broker acknowledged.

    Uses the ingestors' producer (idempotent, acks=all); raises ``DeliveryError`` if any record
    was rejected or not acknowledged within ``timeout``. Retry: produces the same event ids
    again (Kafka then holds duplicates, which the HBase sink absorbs: the event id is the row key).
    """
    from ingestors.producer import EventProducer

    producer = EventProducer(bootstrap, client_id=f"smoke-{tag}", conf={"message.timeout.ms": int(timeout * 1000)})
    now_ms = int(time.time() * 1000)
    for i in range(count):
        event = {"event_id": f"{tag}-{i:06d}", "seq": i, "device": f"dev-{i % 7}", "event_time": now_ms}
        producer.send_raw(TOPIC.name, json.dumps(event).encode(), key=event["device"].encode())
        producer.poll(0)
    return producer.close(timeout).acked


def count_rows(conn, tag: str) -> int:
    """Rows of the smoke table whose key starts with ``tag``."""
    return sum(1 for _ in conn.table(TABLE).scan(row_prefix=f"{tag}-".encode(), columns=[b"d:seq"]))

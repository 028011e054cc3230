"""The smoke pipeline: events to Kafka, Spark reads them through the connector, rows to HBase.

It proves the four systems work together; the real pipelines replace it as the main job.
"""

from __future__ import annotations

import json
import logging
import time

from tormenta.kafka import TopicSpec

log = logging.getLogger(__name__)

TOPIC = TopicSpec("tormenta.smoke", partitions=3)
TABLE = "tormenta_smoke"
FAMILIES = {"d": {"max_versions": 1}}


class DeliveryError(RuntimeError):
    """The broker did not acknowledge every record."""


def produce_events(bootstrap: str, tag: str, count: int, timeout: float = 60.0) -> int:
    """Produce ``count`` keyed JSON events tagged ``tag``; return how many the broker acknowledged.

    Raises DeliveryError if any record was rejected or not acknowledged within ``timeout``.
    Retry: produces the same event ids again (Kafka then holds duplicates, which the HBase sink
    absorbs because the event id is the row key).
    """
    from confluent_kafka import Producer

    failures: list[str] = []
    acked = 0

    def on_delivery(err, _msg) -> None:
        nonlocal acked
        if err is not None:
            failures.append(str(err))
        else:
            acked += 1

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,  # librdkafka defaults to false
            "acks": "all",
            "message.timeout.ms": int(timeout * 1000),
            "linger.ms": 20,
            "compression.type": "lz4",
        }
    )
    now_ms = int(time.time() * 1000)
    for i in range(count):
        event = {"event_id": f"{tag}-{i:06d}", "seq": i, "device": f"dev-{i % 7}", "event_time": now_ms}
        while True:
            try:
                producer.produce(TOPIC.name, key=event["device"], value=json.dumps(event),
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: serve callbacks, then try again
        producer.poll(0)
    remaining = producer.flush(timeout)
    if remaining or failures:
        raise DeliveryError(
            f"{remaining} records unacknowledged, {len(failures)} rejected "
            f"(first: {failures[:1]}); acknowledged {acked}/{count}"
        )
    return acked


def count_rows(conn, tag: str) -> int:
    """Rows of the smoke table whose key starts with ``tag``."""
    return sum(1 for _ in conn.table(TABLE).scan(row_prefix=f"{tag}-".encode(), columns=[b"d:seq"]))

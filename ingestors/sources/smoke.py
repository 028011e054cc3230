"""The smoke pipeline's source: keyed JSON events tagged with the run, through the ingestors'
producer (idempotent, acks=all), for the Spark job of ``tormenta_smoke`` to copy into HBase."""

from __future__ import annotations

import json
import time

from ingestors.producer import EventProducer
from tormenta import smoke


def produce_events(bootstrap: str, tag: str, count: int, timeout: float = 60.0) -> int:
    """Produce ``count`` keyed JSON events tagged ``tag``; return how many the broker acknowledged.

    Uses the ingestors' producer (idempotent, acks=all); raises ``DeliveryError`` if any record
    was rejected or not acknowledged within ``timeout``. Retry: produces the same event ids
    again (Kafka then holds duplicates, which the HBase sink absorbs: the event id is the row key).
    """
    producer = EventProducer(bootstrap, client_id=f"smoke-{tag}", conf={"message.timeout.ms": int(timeout * 1000)})
    now_ms = int(time.time() * 1000)
    for i in range(count):
        event = {"event_id": f"{tag}-{i:06d}", "seq": i, "device": f"dev-{i % 7}", "event_time": now_ms}
        producer.send_raw(smoke.TOPIC.name, json.dumps(event).encode(), key=event["device"].encode())
        producer.poll(0)
    return producer.close(timeout).acked

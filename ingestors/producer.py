"""The one Kafka producer every ingestor uses (confluent-kafka / librdkafka).

Durability settings are explicit: ``enable.idempotence=true`` (librdkafka defaults to false),
``acks=all``, a bounded ``message.timeout.ms``. Throughput comes from batching (``linger.ms``,
``batch.size``) and lz4 compression, never from weakening acknowledgements. ``close`` fails
when anything was not acknowledged, so a run never claims success for records the broker rejected.

Delivery reports: by default librdkafka reports only failures (``delivery.report.only.error``),
and a record counts as acknowledged once a flush returned with nothing pending and it did not
fail: no Python callback per record. A source that must answer per record (the geo endpoint
answers a phone only after Kafka acknowledged its positions) asks for every report.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tormenta.contracts import EventKind, encode

log = logging.getLogger(__name__)

DEFAULT_CONF: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "message.timeout.ms": 30_000,
    "linger.ms": 10,
    "batch.size": 512 * 1024,
    "batch.num.messages": 20_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 256 * 1024,
    "message.max.bytes": 1_000_000,
}


class DeliveryError(RuntimeError):
    """Some records were rejected by the broker or not acknowledged in time."""


@dataclass
class DeliveryStats:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    errors: Counter = field(default_factory=Counter)

    @property
    def pending(self) -> int:
        return self.sent - self.acked - self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "acked": self.acked, "failed": self.failed, "errors": dict(self.errors)}


class EventProducer:
    """Send contract events to their topic, keyed by the event's source entity."""

    def __init__(self, bootstrap: str, client_id: str, conf: dict[str, Any] | None = None,
                 topics: dict[str, str] | None = None, report_successes: bool = False) -> None:  # fmt: skip
        from confluent_kafka import Producer

        merged = {**DEFAULT_CONF, **(conf or {}), "bootstrap.servers": bootstrap, "client.id": client_id,
                  "delivery.report.only.error": not report_successes}  # fmt: skip
        self.reports_successes = report_successes
        if merged.get("enable.idempotence") is not True or str(merged.get("acks")) not in ("all", "-1"):
            raise ValueError("ingestors require enable.idempotence=true and acks=all")
        self._producer = Producer(merged)
        self.stats = DeliveryStats()
        self.topics = topics or {}  # kind name -> topic, when not the contract's (tests, bench)

    def _on_delivery(self, err, _msg) -> None:
        if err is None:
            if self.reports_successes:
                self.stats.acked += 1
        else:
            self.stats.failed += 1
            self.stats.errors[err.name() if hasattr(err, "name") else str(err)] += 1

    def send(self, kind: EventKind, event: dict[str, Any], on_delivery=None) -> None:
        """Queue one event (adds ``sent_at``). Blocks, serving callbacks, while the queue is full.

        Retry: sending the same event again produces a second Kafka record with the same
        event id; downstream dedupe by event id stores it once.
        """
        event["sent_at"] = int(time.time() * 1000)
        value = encode(event)
        key = str(event[kind.key_field]).encode()
        if on_delivery is not None and not self.reports_successes:
            raise ValueError("a per-record delivery callback needs EventProducer(report_successes=True)")
        if on_delivery is None:
            callback = self._on_delivery
        else:

            def callback(err, msg):
                self._on_delivery(err, msg)
                on_delivery(err, msg)

        self._produce(self.topics.get(kind.name, kind.topic), value, key, callback)

    def send_raw(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        """Send bytes as they are (file replay of recorded records, poison tests)."""
        self._produce(topic, value, key, self._on_delivery)

    def _produce(self, topic: str, value: bytes | None, key: bytes | None, callback) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=callback)
                break
            except BufferError:  # local queue full: serve delivery callbacks, then try again
                self._producer.poll(0.05)
        self.stats.sent += 1

    def poll(self, timeout: float = 0) -> None:
        self._producer.poll(timeout)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every queued record's acknowledgement; returns how many are still pending."""
        remaining = self._producer.flush(timeout)
        if remaining == 0 and not self.reports_successes:
            self.stats.acked = self.stats.sent - self.stats.failed  # every report left was an error
        return remaining

    def close(self, timeout: float = 30.0) -> DeliveryStats:
        """Flush what was accepted; raise DeliveryError if anything failed or is still pending."""
        remaining = self.flush(timeout)
        if remaining or self.stats.failed or self.stats.pending:
            raise DeliveryError(
                f"{self.stats.failed} rejected, {max(remaining, self.stats.pending)} unacknowledged "
                f"of {self.stats.sent} sent: {dict(self.stats.errors)}"
            )
        return self.stats

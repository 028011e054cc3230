"""Kafka administration helpers (confluent-kafka)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication: int = 1
    config: dict[str, str] = field(default_factory=dict)


def ensure_topics(bootstrap: str, specs: list[TopicSpec], timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    Retry: safe; an existing topic is left as it is (its partition count is never changed here).
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    todo = [s for s in specs if s.name not in existing]
    if not todo:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, s.replication, config=dict(s.config)) for s in todo],
        request_timeout=timeout,
    )
    created = []
    for name, fut in futures.items():
        try:
            fut.result()
            created.append(name)
            log.info("created Kafka topic %s", name)
        except Exception as exc:
            # TOPIC_ALREADY_EXISTS from a concurrent creator is fine; anything else is not.
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created

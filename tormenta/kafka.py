"""Kafka administration helpers (confluent-kafka)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from tormenta.contracts import DEFAULT_NAMESPACE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication: int = -1  # -1: the brokers' default.replication.factor (KIP-464)
    config: dict[str, str] = field(default_factory=dict)


def durability() -> tuple[int, dict[str, str]]:
    """Replication factor and topic config from settings (``TORMENTA_TOPIC_REPLICATION`` and
    ``TORMENTA_TOPIC_MIN_ISR``): ``(-1, {})`` leaves both to the brokers' defaults."""
    from tormenta.settings import load

    s = load()
    replication, min_isr = s.topic_replication, s.topic_min_isr
    if replication == 0 or replication < -1:
        raise ValueError(f"TORMENTA_TOPIC_REPLICATION={replication}: use -1 (brokers' default) or >= 1")
    if min_isr < 0 or (replication > 0 and min_isr > replication):
        raise ValueError(f"TORMENTA_TOPIC_MIN_ISR={min_isr} must be 0 (brokers' default) .. the replication")
    if replication > 0 and min_isr == replication:
        log.warning("min.insync.replicas = replication (%d): one broker down stops every acks=all write", min_isr)
    return replication, ({"min.insync.replicas": str(min_isr)} if min_isr else {})


def retention_config() -> dict[str, str]:
    """Retention of the event topics, so Kafka's disk is bounded. Kafka is also the batch
    archetype's archive: keep at least the windows you may want to re-run.

    ``TORMENTA_TOPIC_RETENTION_HOURS`` (default 168: 7 days) and
    ``TORMENTA_TOPIC_RETENTION_MB`` per partition (default 2048; 4 partitions x 2 topics: 16 GiB).
    """
    hours = float(os.environ.get("TORMENTA_TOPIC_RETENTION_HOURS", "168"))
    mb = int(os.environ.get("TORMENTA_TOPIC_RETENTION_MB", "2048"))
    if hours <= 0 or mb <= 0:
        raise ValueError("TORMENTA_TOPIC_RETENTION_HOURS and _MB must be > 0")
    return {"retention.ms": str(int(hours * 3_600_000)), "retention.bytes": str(mb * 1024 * 1024)}


def contract_topics(namespace: str = DEFAULT_NAMESPACE) -> list[TopicSpec]:
    """The event topics of a namespace, with their partitions and retention."""
    from tormenta.contracts import KINDS, TOPIC_PARTITIONS, topic_for

    replication, config = durability()
    return [TopicSpec(topic_for(k, namespace), TOPIC_PARTITIONS, replication, {**retention_config(), **config})
            for k in KINDS.values()]  # fmt: skip


def ensure_topics(bootstrap, specs: list[TopicSpec], timeout: float = 30.0, apply_config: bool = False
                  ) -> list[str]:  # fmt: skip
    """Create the topics that do not exist yet; returns the names created.

    ``bootstrap``: the servers, or an ``AdminClient`` (the Kafka provider's hook builds one from an
    Airflow connection: ``tormenta.providers.kafka``). Retry: safe; an existing topic keeps its
    partition count. ``apply_config``: the specs' config entries are also set on topics that exist
    (e.g. a retention changed since).
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap}) if isinstance(bootstrap, str) else bootstrap
    existing = set(admin.list_topics(timeout=timeout).topics)
    if apply_config:
        _set_config(admin, [s for s in specs if s.name in existing and s.config], timeout)
    todo = [s for s in specs if s.name not in existing]
    if not todo:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, s.replication, config=dict(s.config)) for s in todo],
        request_timeout=timeout,
    )
    created, raced = [], []
    for name, fut in futures.items():
        try:
            fut.result()
            created.append(name)
            log.info("created Kafka topic %s", name)
        except KafkaException as exc:
            # TOPIC_ALREADY_EXISTS from a concurrent creator, or a topic created a moment ago that
            # the broker's metadata did not list yet, is fine; anything else is not.
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            raced.append(name)
    if apply_config:  # a topic that existed after all gets the config too
        _set_config(admin, [s for s in todo if s.name in raced and s.config], timeout)
    return created


def _set_config(admin, specs: list[TopicSpec], timeout: float) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    if not specs:
        return
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, s.name, incremental_configs=[
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in s.config.items()])
        for s in specs
    ]  # fmt: skip
    for fut in admin.incremental_alter_configs(resources, request_timeout=timeout).values():
        fut.result()


"""The batch DAG's file-announcement watcher: the Kafka provider's ``AwaitMessageTrigger``,
imported when the triggerer runs it, not when a DAG file is parsed (the provider's trigger module
imports confluent-kafka, and the DAG processor parses every DAG file again and again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent


class AnnouncementTrigger(BaseEventTrigger):
    """One event per message on ``topics`` (its value, the announcement), read by the consumer of
    the ``kafka_config_id`` connection (its ``group.id`` remembers the messages already turned into
    asset events; the provider's trigger commits each offset before it fires)."""

    def __init__(self, topics: list[str], kafka_config_id: str, poll_interval: float = 2.0) -> None:
        super().__init__()
        self.topics, self.kafka_config_id, self.poll_interval = list(topics), kafka_config_id, poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"topics": self.topics, "kafka_config_id": self.kafka_config_id, "poll_interval": self.poll_interval})  # fmt: skip

    def _inner(self):
        from airflow.providers.apache.kafka.triggers.await_message import AwaitMessageTrigger

        return AwaitMessageTrigger(topics=self.topics, kafka_config_id=self.kafka_config_id,
                                   poll_interval=self.poll_interval)  # fmt: skip

    async def run(self) -> AsyncIterator[TriggerEvent]:
        inner = self._inner()
        try:
            async for event in inner.run():
                yield event
        finally:
            await inner.cleanup()

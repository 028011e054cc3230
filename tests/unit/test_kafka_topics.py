"""tormenta.kafka.ensure_topics on a fake admin client: which topics it creates and which get their
config set (the real broker: tests/integration/test_kafka.py)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from confluent_kafka import KafkaError, KafkaException

from tormenta.kafka import TopicSpec, ensure_topics

pytestmark = pytest.mark.unit


def done(value=None, error: int | None = None) -> Future:
    f: Future = Future()
    f.set_exception(KafkaException(KafkaError(error))) if error is not None else f.set_result(value)
    return f


class Admin:
    """Lists ``listed``; creating a name in ``exists`` fails with TOPIC_ALREADY_EXISTS."""

    def __init__(self, listed=(), exists=()):
        self.listed, self.exists, self.altered = set(listed), set(exists) | set(listed), []

    def list_topics(self, timeout):
        return type("Metadata", (), {"topics": {name: None for name in self.listed}})()

    def create_topics(self, topics, request_timeout):
        return {t.topic: done(error=KafkaError.TOPIC_ALREADY_EXISTS) if t.topic in self.exists else done()
                for t in topics}  # fmt: skip

    def incremental_alter_configs(self, resources, request_timeout):
        self.altered += [(r.name, {e.name: e.value for e in r.incremental_configs}) for r in resources]
        return {r: done() for r in resources}


SPECS = [TopicSpec("a", 4, 1, {"retention.ms": "7200000"}), TopicSpec("b", 4, 1, {"retention.ms": "7200000"})]


def test_new_topics_are_created_with_their_config_and_nothing_is_altered():
    admin = Admin()
    assert ensure_topics(admin, SPECS, apply_config=True) == ["a", "b"]
    assert admin.altered == []


def test_apply_config_sets_it_on_listed_topics():
    admin = Admin(listed={"a"})
    assert ensure_topics(admin, SPECS, apply_config=True) == ["b"]
    assert admin.altered == [("a", {"retention.ms": "7200000"})]


def test_a_topic_the_listing_missed_still_gets_its_config():
    """Just created, the topic may be missing from the broker's metadata for a moment: creating it
    again says it exists, and its config must still be set (it was skipped before: a flaky test)."""
    admin = Admin(exists={"a"})
    assert ensure_topics(admin, SPECS, apply_config=True) == ["b"]
    assert admin.altered == [("a", {"retention.ms": "7200000"})]


def test_without_apply_config_an_existing_topic_is_left_alone():
    admin = Admin(listed={"a"}, exists={"b"})
    assert ensure_topics(admin, SPECS) == []
    assert admin.altered == []

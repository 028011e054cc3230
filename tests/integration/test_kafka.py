"""Kafka (KRaft, local broker) with confluent-kafka: a keyed batch arrives whole and in order per key."""

import json
import time
from collections import defaultdict

import pytest

from tormenta.kafka import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


def test_keyed_batch_nothing_lost_order_per_key(stack, unique):
    from confluent_kafka import Consumer, Producer

    topic = f"test.kafka.{unique}"
    assert ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, partitions=3)]) == [topic]
    assert ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, partitions=3)]) == []  # idempotent

    errors = []
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    sent = defaultdict(list)
    for i in range(3000):
        key = f"page-{i % 11}"
        sent[key].append(i)
        producer.produce(topic, key=key, value=json.dumps({"i": i}),
                         on_delivery=lambda err, _m: err and errors.append(err))
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors

    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": f"g-{unique}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = defaultdict(list)
    total, idle = 0, 0
    try:
        while total < 3000 and idle < 20:
            msgs = consumer.consume(1000, timeout=1.0)
            idle = idle + 1 if not msgs else 0
            for m in msgs:
                assert m.error() is None, m.error()
                got[m.key().decode()].append(json.loads(m.value())["i"])
                total += 1
    finally:
        consumer.close()
    assert total == 3000
    assert dict(got) == dict(sent)  # same events per key, in the order they were produced


@pytest.mark.contract(3)
def test_unknown_topic_is_reported_not_swallowed(stack, unique):
    """Topics are not auto-created: producing to a typo fails delivery instead of creating it."""
    from confluent_kafka import Producer

    errors = []
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True,
                         "acks": "all", "message.timeout.ms": 5000})
    producer.produce(f"no.such.topic.{unique}", value=b"x", on_delivery=lambda err, _m: errors.append(err))
    producer.flush(15)
    assert len(errors) == 1 and errors[0] is not None


def test_contract_topics_have_bounded_retention_also_when_they_existed_before(stack, unique, monkeypatch):
    from confluent_kafka.admin import AdminClient, ConfigResource

    from tormenta.kafka import contract_topics

    ns = f"t{unique}"
    specs = contract_topics(ns)
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(specs[0].name, 1)])  # an old topic, no retention set
    monkeypatch.setenv("TORMENTA_TOPIC_RETENTION_MB", "64")
    created = ensure_topics(stack.kafka_bootstrap, contract_topics(ns), apply_config=True)
    assert created == [specs[1].name]
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    for spec in specs:
        res = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
        configs = next(iter(admin.describe_configs([res]).values())).result(30)
        assert configs["retention.bytes"].value == str(64 * 1024 * 1024), spec.name
        assert configs["retention.ms"].value == str(168 * 3_600_000), spec.name
    admin.delete_topics([s.name for s in specs])


def test_the_provider_hook_makes_topics_with_their_config_and_names_the_servers(stack, unique, monkeypatch):
    """tormenta.providers.kafka: the Kafka provider's admin client from an Airflow connection, topics
    with retention (created, then applied to the existing ones), and a clear error without servers."""
    import json

    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource

    from tormenta.kafka import contract_topics
    from tormenta.providers.kafka import KafkaHook, bootstrap_servers

    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_T",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": stack.kafka_bootstrap}}))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_EMPTY", json.dumps({"conn_type": "kafka", "extra": {}}))
    assert bootstrap_servers("kafka_t") == stack.kafka_bootstrap
    with pytest.raises(ValueError, match="'kafka_empty' has no 'bootstrap.servers'"):
        bootstrap_servers("kafka_empty")

    specs = contract_topics(f"t{unique}")
    hook = KafkaHook("kafka_t")
    try:
        assert hook.ensure_topics(specs) == [s.name for s in specs]
        monkeypatch.setenv("TORMENTA_TOPIC_RETENTION_HOURS", "2")
        assert hook.ensure_topics(contract_topics(f"t{unique}"), apply_config=True) == []  # they exist
        admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
        res = ConfigResource(ConfigResource.Type.TOPIC, specs[0].name)
        deadline = time.monotonic() + 30
        while True:  # a new topic, and a config change, reach the broker's metadata a moment later
            try:
                retention = next(iter(admin.describe_configs([res]).values())).result(30)["retention.ms"].value
                if retention == str(2 * 3_600_000) or time.monotonic() > deadline:
                    break
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)
        assert retention == str(2 * 3_600_000)
    finally:
        hook.delete_topic([s.name for s in specs])


def test_records_a_query_has_not_read_before_a_time_are_counted_per_partition(stack, unique):
    """The agree task's 'caught up' test: one partition read past the window's end says nothing of
    another one still behind it (a max over partitions did, and the check then failed falsely)."""
    from confluent_kafka import Producer

    from tormenta import microbatch

    topic = f"test.unread.{unique}"
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, partitions=2)])
    end = int(time.time() * 1000) - 60_000
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    for part, before, after in ((0, 5, 3), (1, 7, 0)):  # partition 1 has nothing at or after the end
        for i in range(before + after):
            ts = end - 30_000 + i if i < before else end + 1_000 + i
            producer.produce(topic, value=b"x", partition=part, timestamp=ts)
    assert producer.flush(30) == 0

    def unread(p0: int, p1: int) -> int | None:
        progress = {"result": {"read": 1}, "progress": {"endOffsets": [{topic: {"0": p0, "1": p1}}]}}
        return microbatch.unread_before(stack.kafka_bootstrap, progress, end)

    assert unread(8, 2) == 5  # partition 0 read past the end, partition 1 five records short of it
    assert unread(3, 7) == 2  # partition 1 read to its end, partition 0 two records short of the end
    assert unread(5, 7) == 0  # every record before the end read in both
    assert unread(0, 0) == 12
    assert microbatch.unread_before(stack.kafka_bootstrap, None, end) is None  # no micro-batch yet
    # the supervisor's lag: everything past what was read, whatever its time (8 + 7 records)
    assert microbatch.consumer_lag(stack.kafka_bootstrap, [{topic: {"0": 8, "1": 2}}]) == 5
    assert microbatch.consumer_lag(stack.kafka_bootstrap, [{topic: {"0": 3, "1": 7}}]) == 5
    assert microbatch.consumer_lag(stack.kafka_bootstrap, [{topic: {"0": 8, "1": 7}}]) == 0
    assert microbatch.consumer_lag(stack.kafka_bootstrap, []) is None

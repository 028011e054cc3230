"""The per-partition pass of a batch (validate, dedupe, rules, writes) on an in-memory HBase fake."""

from __future__ import annotations

from collections import defaultdict

import pytest

from spark_jobs.hbase_sink import BatchContext, process_partition
from spark_jobs.transforms.social import add_comment_features, mentions_of, sentiment_of
from tests.unit.test_contracts import NOW, POISON, social
from tormenta import reference
from tormenta.contracts import SOCIAL, ContractError, event_row_key, validate

pytestmark = pytest.mark.unit


class FakeTable:
    def __init__(self):
        self.cells: dict[bytes, dict[bytes, tuple[bytes, int]]] = defaultdict(dict)

    def put(self, key, cells, timestamp=None):
        for k, v in cells.items():
            self.cells[key][k] = (v, timestamp)

    def batch(self, timestamp=None, batch_size=None):
        table = self

        class Batch:
            def put(self, key, cells):
                table.put(key, cells, timestamp)

            def send(self):
                pass

        return Batch()

    def rows(self, keys, columns=None, timestamp=None):
        out = []
        for k in keys:
            cells = {c: v for c, (v, ts) in self.cells.get(k, {}).items()
                     if (columns is None or c in columns) and (timestamp is None or (ts or 0) < timestamp)}  # fmt: skip
            if cells:
                out.append((k, cells))
        return out


class FakeConnection:
    tables: dict[str, FakeTable] = defaultdict(FakeTable)

    def table(self, name):
        return self.tables[name]

    def close(self):
        pass


class FakeEndpoint:
    def connect(self):
        return FakeConnection()


@pytest.fixture
def fake():
    FakeConnection.tables = defaultdict(FakeTable)
    return FakeConnection.tables


def rec(value: bytes, offset: int, key: str | None = "pol-01", topic: str = SOCIAL.topic) -> dict:
    return {"topic": topic, "partition": 0, "offset": offset, "kafka_ts": NOW, "key": key.encode() if key else None,
            "value": value}  # fmt: skip


def run(records, label="s0001000000001", seq=1_000_000_001):
    ctx = BatchContext(label=label, seq=seq, endpoint=FakeEndpoint())
    return next(process_partition(ctx, {SOCIAL.topic: SOCIAL.name}, reference.POLITICIANS, {}, [], iter(records)))


def test_poison_is_dead_lettered_with_the_validators_reason(fake):
    records = [rec(raw, i) for i, (raw, _) in enumerate(POISON)]
    out = run(records)
    want: dict[str, int] = {}
    for _, reason in POISON:
        want[reason] = want.get(reason, 0) + 1
    assert out["read"] == len(POISON) and out["dead_by_reason"] == want
    dead = fake["tormenta_dead_letters"].cells
    assert len(dead) == len(POISON)
    assert {v[b"d:reason"][0].decode() for v in dead.values()} == set(want)


def test_good_events_are_enriched_counted_and_the_first_copy_wins(fake):
    a = social(event_id="pol-01-c1", text="gracias @x excelente")
    b = social(event_id="pol-01-c2", text="corrupto")
    out = run([rec(a, 0), rec(b, 1), rec(a, 2), rec(social(event_id="pol-01-c3"), 3, key="pol-09")])
    assert out["dead_by_reason"] == {"duplicate_event_id": 1, "key_mismatch:page_id": 1}
    assert out["by_kind"] == {"social.comment": {"valid": 2, "new": 2, "dup_cross_batch": 0}}
    stored = fake["tormenta_social_comments"].cells
    row = stored[event_row_key("pol-01-c1")]
    assert row[b"d:kafka"][0] == f"{SOCIAL.topic}:0:0".encode()  # the first copy, offset 0
    assert row[b"d:party"][0] == reference.POLITICIANS["pol-01"]["party"].encode()
    ((page, _minute), (count, mentions, sent)), = out["minute"].items()
    assert (page, count, mentions, sent) == ("pol-01", 2, 1, 0.0)  # +1 and -1


def test_replaying_the_batch_writes_the_same_cells_and_a_later_batch_sees_duplicates(fake):
    records = [rec(social(event_id=f"pol-01-c{i}"), i) for i in range(5)]
    first = run(records)
    snapshot = {t: {k: dict(v) for k, v in tbl.cells.items()} for t, tbl in fake.items()}
    again = run(records)  # same label: a replay
    assert again["by_kind"] == first["by_kind"]
    assert {t: {k: dict(v) for k, v in tbl.cells.items()} for t, tbl in fake.items()} == snapshot
    later = run(records, label="s0001000000002", seq=1_000_000_002)
    assert later["by_kind"]["social.comment"] == {"valid": 5, "new": 0, "dup_cross_batch": 5}


def test_unknown_topic_fails_the_batch(fake):
    with pytest.raises(ValueError, match="no contract for topic"):
        run([rec(social(), 0, topic="elsewhere")])


def test_validator_checks_the_kafka_key_only_when_given():
    raw = social()
    assert validate(raw, SOCIAL, NOW)["page_id"] == "pol-01"
    assert validate(raw, SOCIAL, NOW, key="pol-01")["event_id"] == "pol-01-c1"
    with pytest.raises(ContractError, match="key_mismatch:page_id"):
        validate(raw, SOCIAL, NOW, key="")


def test_comment_features():
    e = add_comment_features({"text": "Gracias @ana_torres excelente propuesta", "event_time": NOW})
    assert e["mentions"] == 1 and e["sentiment"] == 1.0 and len(e["minute"]) == 12
    assert sentiment_of("corrupto mentiroso fraude @x @y") == -1.0
    assert sentiment_of("el pueblo vota") == 0.0 and sentiment_of("") == 0.0
    assert mentions_of("@a @b c@d") == 3
    assert sentiment_of("bueno_excelente") == 1.0  # "_" splits words like the rest of the punctuation

import json

import pytest

from kinds.geo.contract import KIND as GEO
from kinds.social.contract import KIND as SOCIAL
from tests.bad_input import CASES
from tormenta.contracts import (
    KINDS,
    NAMESPACE_PATTERN,
    TABLES,
    ContractError,
    check_namespace,
    event_row_key,
    minute_bucket,
    row_key,
    split_row_key,
    table_name,
    topic_for,
    validate,
)

pytestmark = pytest.mark.unit
NOW = 1_795_000_000_000


def social(**over):
    e = {"schema": "social.comment", "v": 1, "event_id": "pol-01-c1", "event_time": NOW, "source": "t",
         "sent_at": NOW, "page_id": "pol-01", "post_id": "p1", "author": "a", "text": "hola", "lang": "es"}
    e.update(over)
    return json.dumps(e).encode()


POISON = [
    (b"{nope", "invalid_json"),
    (b"[1]", "invalid_json"),
    (social(author=None), "missing_field:author"),
    (social(event_time="x"), "wrong_type:event_time"),
    (social(event_time=True), "wrong_type:event_time"),
    (social(event_time=1.5), "wrong_type:event_time"),
    (social(extra=1), "unexpected_field:extra"),
    (social(event_id=" "), "empty_key:event_id"),
    (social(page_id=""), "empty_key:page_id"),
    (social(text="x" * 20000), "oversize"),
    (social(event_time=NOW + 10 * 60_000), "event_time_in_future"),
    (social(event_time=NOW - 8 * 86_400_000), "event_time_too_old"),
    (social(v=2), "unknown_schema_version"),
    (social(schema="geo.position"), "unknown_schema_version"),
]


@pytest.mark.parametrize(("raw", "reason"), POISON)
def test_poison_reasons(raw, reason):
    with pytest.raises(ContractError) as err:
        validate(raw, SOCIAL, NOW)
    assert err.value.reason == reason


def test_good_event_and_exact_types():
    assert validate(social(), SOCIAL, NOW)["page_id"] == "pol-01"
    with pytest.raises(ContractError, match="wrong_type:author"):  # a number is not a string
        validate(social(author=42), SOCIAL, NOW)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_bad_input_class_has_its_reason(case):
    _, kind, raw, key, reason = case
    # A null Kafka key is no entity: the jobs compare it as "" (producers may pass key=None: no check).
    with pytest.raises(ContractError) as err:
        validate(raw, KINDS[f"{kind}.comment" if kind == "social" else "geo.position"], NOW,
                 key="" if key is None else key.decode(errors="replace"))
    assert err.value.reason == reason


def test_composite_row_keys_are_unambiguous():
    assert row_key("a|b", "c") != row_key("a", "b|c")
    assert row_key("a%7Cb") != row_key("a|b")
    for parts in (["a|b", "c"], ["a", "b|c"], ["100%", "|%|"], ["", ""]):
        assert split_row_key(row_key(*parts)) == parts


def test_geo_ranges():
    e = {"schema": "geo.position", "v": 1, "event_id": "d-1", "event_time": NOW, "source": "t", "sent_at": NOW,
         "device_id": "d", "trip_id": "t", "lat": 40.4, "lon": -3.7, "speed_kmh": 30}
    assert validate(json.dumps(e).encode(), GEO, NOW)
    with pytest.raises(ContractError, match="out_of_range:lat"):
        validate(json.dumps({**e, "lat": 91}).encode(), GEO, NOW)


def test_row_keys_are_deterministic_and_salted():
    assert event_row_key("abc") == event_row_key("abc")
    salt, _, rest = event_row_key("abc").partition(b"|")
    assert len(salt) == 2 and rest == b"abc"
    assert minute_bucket(0) == "197001010000"


def test_table_names():
    assert table_name("dead_letters") == "tormenta_dead_letters"
    assert table_name("dead_letters", "t1") == "t1_dead_letters"
    with pytest.raises(KeyError):
        table_name("nope")
    with pytest.raises(ValueError):
        table_name("dead_letters", "x;drop")
    assert all(fams for fams in TABLES.values())


def test_time_is_checked_against_the_record_not_the_clock():
    old = NOW - 365 * 86_400_000
    raw = social(event_time=old)
    assert validate(raw, SOCIAL, old)  # a year-old record with its own year-old timestamp is fine


GOOD_NAMESPACES = ["tormenta", "tormenta_batch", "t0123456789", "a" * 20]
BAD_NAMESPACES = ["", "Tormenta", "1abc", "a" * 21, "x;drop", "tormenta-batch", "ñu", "t.x"]


@pytest.mark.parametrize("namespace", GOOD_NAMESPACES + BAD_NAMESPACES)
def test_one_namespace_rule_for_params_topics_tables_and_both_jobs(namespace):
    """The DAGs' Param pattern, topic and table names and the two jobs' arguments agree on every name."""
    import re

    from spark_jobs import batch as batch_job
    from spark_jobs import streaming
    from tormenta.microbatch import params

    good = namespace in GOOD_NAMESPACES
    pattern = params()["namespace"].schema["pattern"]
    assert pattern == NAMESPACE_PATTERN
    assert bool(re.fullmatch(pattern, namespace)) is good
    from tormenta.kafka import contract_topics

    for name in (lambda: topic_for(SOCIAL, namespace), lambda: table_name("dead_letters", namespace),
                 lambda: check_namespace(namespace), lambda: ",".join(t.name for t in contract_topics(namespace))):  # fmt: skip
        if good:
            assert namespace in name()
        else:
            with pytest.raises(ValueError, match="lower-case letter"):
                name()
    jobs = [lambda: streaming.parse_args(["--bootstrap", "b:9092", "--checkpoint-root", "c", "--namespace", namespace]),
            lambda: batch_job.parse_args(["process", "--parquet-dir", "p", "--namespace", namespace,
                                          "--source-namespace", "tormenta", "--label", "w202601010000-202601010100",
                                          "--seq", "1"])]  # fmt: skip
    for job in jobs:
        if good:
            assert job().namespace == namespace
        else:
            with pytest.raises(SystemExit):
                job()

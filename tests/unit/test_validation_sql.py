"""The contract as Spark SQL (spark_jobs.validation) against the Python reference validator, and
the SQL rules against the Python rules: same reasons, same row keys, same features."""

from __future__ import annotations

import pytest

from kinds.geo.contract import KIND as GEO
from kinds.social.contract import KIND as SOCIAL
from kinds.social.rules import FEATURES_SQL, mentions_of, sentiment_of, with_features
from spark_jobs.validation import classify, dedupe, event_row_key_sql, row_key_sql
from tests.bad_input import CASES, NOW, enc, geo, social
from tormenta.contracts import KINDS, ContractError, event_row_key, row_key, validate

pytestmark = pytest.mark.unit
TOPICS = {"t.social": SOCIAL, "t.geo": GEO}
SCHEMA = "topic string, partition int, offset long, kafka_ts long, key binary, value binary"


def rows(spark, records):
    """(topic, partition, offset, key, value) records -> a Kafka-shaped DataFrame at time NOW."""
    return spark.createDataFrame([(t, p, o, NOW, k, v) for t, p, o, k, v in records], SCHEMA)


def reasons(spark, records) -> dict[int, str | None]:
    out = dedupe(classify(rows(spark, records), TOPICS)).select("offset", "reason").collect()
    return {r["offset"]: r["reason"] for r in out}


def test_good_events_pass(spark):
    got = reasons(spark, [("t.social", 0, 0, b"pol-01", enc(social())), ("t.geo", 0, 1, b"dev-1", enc(geo()))])
    assert got == {0: None, 1: None}


def test_sql_and_python_give_every_bad_input_the_same_reason(spark):
    records = [("t.social" if kind == "social" else "t.geo", 0, i, key, raw)
               for i, (_, kind, raw, key, _) in enumerate(CASES)]  # fmt: skip
    got = reasons(spark, records)
    for i, (name, kind, raw, key, want) in enumerate(CASES):
        assert got[i] == want, name
        contract = SOCIAL if kind == "social" else GEO
        with pytest.raises(ContractError) as err:
            validate(raw, contract, NOW, key="" if key is None else key.decode(errors="replace"))
        assert err.value.reason == want, name


def test_copies_are_duplicates_whatever_key_or_partition(spark):
    a = enc(social(event_id="same", page_id="pol-01"))
    b = enc(social(event_id="same", page_id="pol-02"))  # the same id under another entity
    got = reasons(spark, [("t.social", 3, 7, b"pol-02", b), ("t.social", 1, 9, b"pol-01", a),
                          ("t.social", 1, 10, b"pol-01", a)])  # fmt: skip
    assert got == {9: None, 10: "duplicate_event_id", 7: "duplicate_event_id"}  # first by partition, offset


def test_row_keys_agree_with_python(spark):
    values = ["plain", "a|b", "100%", "%7C", "ñandú|x", ""]
    df = spark.createDataFrame([(v, w) for v in values for w in values], "a string, b string")
    out = df.selectExpr("a", "b", f"{row_key_sql('a', 'b')} AS k", f"{event_row_key_sql('a')} AS e").collect()
    assert len({r["k"] for r in out}) == len(out)  # no two pairs share a key
    for r in out:
        assert r["k"].encode() == row_key(r["a"], r["b"])
        assert r["e"].encode() == event_row_key(r["a"])


def test_comment_features_agree_with_python(spark):
    texts = ["hola @ana_torres, gracias!", "CORRUPTO y mentiroso... #escándalo", "Vergüenza, renuncia ya",
             "bien bien mal", "@a @b_c @ñu excelente", "", "good_bad great", "honest-liar",
             "buenoo xbueno bueno1 @bueno BUENO", "mejor\tpeor\nbien", "ESCÁNDALO, vergüenza!", "love#win win",
             "1bad bad2 _bad_ bad_ _bad", "ñmalo malo ñ"]  # fmt: skip
    df = spark.createDataFrame([(t, NOW) for t in texts], "text string, event_time long")
    out = with_features(df).collect()
    assert {"mentions", "sentiment", "minute"} <= set(out[0].asDict()) == set(df.columns) | {
        name for step in FEATURES_SQL for name in step if not name.startswith("_")}
    for r in out:
        assert r["mentions"] == mentions_of(r["text"]), r["text"]
        assert r["sentiment"] == pytest.approx(sentiment_of(r["text"])), r["text"]


def test_kinds_registry_covers_every_contract():
    from spark_jobs.rules import RULES

    assert set(RULES) == set(KINDS)

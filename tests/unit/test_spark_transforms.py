"""Spark transforms on a local session (no services): validation parity, features, duplicates."""

import pytest

from spark_jobs.transforms.social import sentiment_of
from tests.unit.test_contracts import NOW, POISON, social
from tormenta.contracts import SOCIAL, ContractError, validate

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    from tormenta.spark_conf import DEFAULT_CONF

    builder = SparkSession.builder.master("local[1]").appName("unit")
    for k, v in DEFAULT_CONF.items():
        builder = builder.config(k, v)
    s = builder.getOrCreate()
    yield s
    s.stop()


def _records(spark, values):
    rows = [("topic", 0, i, NOW, "k", v.decode(errors="replace"), len(v)) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, "topic string, partition int, offset long, kafka_ts long, key string, "
                                       "value string, value_bytes int")


def test_spark_and_python_validation_agree(spark):
    from spark_jobs.transforms.validate import parse_and_validate

    values = [raw for raw, _ in POISON] + [social(), social(author=7)]
    got = {r["offset"]: r["reason"] for r in parse_and_validate(_records(spark, values), SOCIAL).collect()}
    for i, raw in enumerate(values):
        try:
            validate(raw, SOCIAL, NOW)
            want = None
        except ContractError as exc:
            want = exc.reason
        assert got[i] == want, (raw[:80], got[i], want)


def test_comment_features_match_python_twin(spark):
    from spark_jobs.transforms.social import add_comment_features

    texts = ["Gracias @ana_torres excelente propuesta", "corrupto mentiroso fraude @x @y", "el pueblo vota", ""]
    df = spark.createDataFrame([(t, NOW) for t in texts], "text string, event_time long")
    out = add_comment_features(df).collect()
    for row, text in zip(out, texts, strict=True):
        assert row["mentions"] == text.count("@")
        assert row["sentiment"] == pytest.approx(sentiment_of(text))
    assert out[0]["sentiment"] == 1.0 and out[1]["sentiment"] == -1.0


def test_in_batch_duplicates_keep_the_first_copy(spark):
    from spark_jobs.transforms.validate import split_duplicates

    df = spark.createDataFrame([("a", 1, 5), ("a", 0, 9), ("b", 0, 1), ("a", 1, 7)],
                               "event_id string, partition int, offset long")
    unique, dups = split_duplicates(df)
    assert sorted((r["event_id"], r["partition"], r["offset"]) for r in unique.collect()) == [("a", 0, 9), ("b", 0, 1)]
    assert sorted(r["offset"] for r in dups.collect()) == [5, 7]
    assert {r["reason"] for r in dups.collect()} == {"duplicate_event_id"}

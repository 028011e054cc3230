"""Parse Kafka records against their contract; every record gets a ``reason`` (null when good).

Mirrors ``tormenta.contracts.validate`` check by check, in the same order, so the JVM does the
work at full speed and the Python twin serves producers and tests as the reference.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from tormenta.contracts import MAX_FUTURE_MS, MAX_PAST_MS, EventKind

KAFKA_COLUMNS = ["topic", "partition", "offset", "kafka_ts", "key", "value"]


def kafka_records(df: DataFrame) -> DataFrame:
    """Kafka source rows -> (topic, partition, offset, kafka_ts ms, key string, value string)."""
    return df.select(
        "topic",
        "partition",
        "offset",
        (F.col("timestamp").cast("double") * 1000).cast("long").alias("kafka_ts"),
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("string").alias("value"),
        F.length("value").alias("value_bytes"),  # length of the binary value = bytes
    )


def _first_failure(conditions: list[tuple[Column, Column | str]]) -> Column:
    """The reason of the first condition that holds (CASE WHEN ... in order), else null."""
    expr = None
    for cond, reason in conditions:
        reason_col = reason if isinstance(reason, Column) else F.lit(reason)
        expr = F.when(cond, reason_col) if expr is None else expr.when(cond, reason_col)
    return expr.otherwise(F.lit(None).cast("string"))


def parse_and_validate(records: DataFrame, kind: EventKind) -> DataFrame:
    """Add one column per contract field (typed) and ``reason``; keeps the Kafka coordinates."""
    value = F.col("value")
    parsed = F.from_json(value, kind.spark_schema_ddl())
    keys = F.expr("json_object_keys(value)")
    allowed = F.array(*[F.lit(n) for n in kind.all_fields])
    unexpected = F.array_sort(F.array_except(keys, allowed))

    df = records.withColumn("_p", parsed).withColumn("_unexpected", unexpected)
    checks: list[tuple[Column, Column | str]] = [
        (F.col("value_bytes") > kind.max_bytes, "oversize"),
        (F.get_json_object(value, "$").isNull() | keys.isNull(), "invalid_json"),
        (F.size("_unexpected") > 0, F.concat(F.lit("unexpected_field:"), F.col("_unexpected")[0])),
    ]
    for name, typ in kind.all_fields.items():
        raw = F.get_json_object(value, f"$.{name}")
        checks.append((raw.isNull(), f"missing_field:{name}"))
        if typ != "string":
            checks.append((F.col(f"_p.{name}").isNull(), f"wrong_type:{name}"))
    checks.append(
        ((F.col("_p.schema") != kind.name) | (F.col("_p.v") != kind.version), "unknown_schema_version")
    )
    for name in ("event_id", kind.key_field):
        checks.append((F.trim(F.col(f"_p.{name}")) == "", f"empty_key:{name}"))
    for name, (lo, hi) in kind.ranges.items():
        checks.append((~F.col(f"_p.{name}").between(lo, hi), f"out_of_range:{name}"))
    checks.append((F.col("_p.event_time") > F.col("kafka_ts") + MAX_FUTURE_MS, "event_time_in_future"))
    checks.append((F.col("_p.event_time") < F.col("kafka_ts") - MAX_PAST_MS, "event_time_too_old"))

    fields = [F.col(f"_p.{n}").alias(n) for n in kind.all_fields]
    return df.select(*KAFKA_COLUMNS, *fields, _first_failure(checks).alias("reason"))


def split_duplicates(valid: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Within one batch keep the first copy of each event id (lowest partition, offset).

    Returns (unique, duplicates); duplicates carry reason ``duplicate_event_id``.
    """
    from pyspark.sql import Window

    w = Window.partitionBy("event_id").orderBy("partition", "offset")
    ranked = valid.withColumn("_rank", F.row_number().over(w))
    unique = ranked.where("_rank = 1").drop("_rank")
    dups = ranked.where("_rank > 1").drop("_rank").withColumn("reason", F.lit("duplicate_event_id"))
    return unique, dups


def union_all(frames: list[DataFrame]) -> DataFrame:
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)

"""The event contracts as Spark SQL: every dead-letter reason is a column expression.

:func:`classify` turns Kafka-shaped rows (``topic, partition, offset, kafka_ts, key, value``) into
the same rows plus ``kind``, ``reason`` (null for a good event) and one typed column per contract
field. The checks, in the order the first failing one names the reason (the same order as
``tormenta.contracts.validate``, the Python reference a test holds this module to):

1. ``unknown_topic``, ``null_value``, ``oversize``;
2. the bytes as JSON (``tormenta_json_defect``, the JVM sink's strict parser): ``invalid_utf8``,
   ``invalid_json``, ``duplicate_key``, ``nul_character``, ``invalid_unicode``;
3. the parsed object (``try_parse_json`` -> VARIANT, whose types are exact: ``schema_of_variant``
   tells a string from a number from an object): ``unexpected_field:<f>``, ``missing_field:<f>``,
   ``wrong_type:<f>``, ``unknown_schema_version``, ``bad_id:<f>`` ('|' or a control character
   in an identifier), ``empty_key:<f>``, ``out_of_range:<f>`` (also NaN and infinities),
   ``event_time_in_future`` / ``event_time_too_old`` (against the Kafka record time),
   ``key_mismatch:<f>`` (the Kafka key must be the entity);
4. :func:`dedupe`: ``duplicate_event_id`` for every copy of an event after the first (by topic,
   partition, offset), across keys and partitions of the batch.

A wrong type is a dead letter by construction: nothing here can raise on a record.
"""

from __future__ import annotations

import re
from functools import cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from tormenta.contracts import KINDS, MAX_FUTURE_MS, MAX_PAST_MS, EventKind

KAFKA_COLUMNS = ("topic", "partition", "offset", "kafka_ts", "key", "value")
_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
_SQL_TYPE = {"string": "string", "long": "bigint", "double": "double"}
BAD_ID_PATTERN = r"[\x00-\x1f\x7f-\x9f|]"  # as tormenta.contracts._CONTROL
BLANK_PATTERN = r"(?U)^\s*$"


def field_columns() -> dict[str, str]:
    """Every contract field of every kind -> its SQL type (the typed columns of ``classify``)."""
    out: dict[str, str] = {}
    for kind in KINDS.values():
        for name, typ in kind.all_fields.items():
            if not _IDENT.fullmatch(name):
                raise ValueError(f"not a contract field name: {name!r}")
            if out.setdefault(name, _SQL_TYPE[typ]) != _SQL_TYPE[typ]:
                raise ValueError(f"field {name} has two types across kinds")
    return out


def sql_str(value: str) -> str:
    """A Spark SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def key_part_sql(expr: str) -> str:
    """One escaped component of a composite row key (``tormenta.contracts.key_part``)."""
    return f"replace(replace(cast({expr} as string), '%', '%25'), '|', '%7C')"


def row_key_sql(*exprs: str) -> str:
    """Composite row key: escaped components joined by '|' (``tormenta.contracts.row_key``)."""
    return "concat(" + ", '|', ".join(key_part_sql(e) for e in exprs) + ")"


def event_row_key_sql(event_id: str = "event_id") -> str:
    """``tormenta.contracts.event_row_key``: a 2-hex md5 salt, then the event id."""
    return row_key_sql(f"substring(md5({event_id}), 1, 2)", event_id)


def key_part(col: Column) -> Column:
    return F.replace(F.replace(col.cast("string"), F.lit("%"), F.lit("%25")), F.lit("|"), F.lit("%7C"))


def _first(checks: list[str]) -> str:
    return "coalesce(" + ", ".join(checks) + ")"


def _kind_checks(kind: EventKind) -> str:
    """Reasons from the parsed object of one kind (step 3 above), null when the event is good.
    ``_t_<f>`` is the JSON type of field f (``schema_of_variant``; null when absent, VOID for null)."""
    allowed = ", ".join(sql_str(f) for f in sorted(kind.all_fields))
    checks = [f"CASE WHEN size(array_except(_keys, array({allowed}))) > 0 "
              f"THEN concat('unexpected_field:', array_min(array_except(_keys, array({allowed})))) END"]  # fmt: skip
    ok = {"string": "= 'STRING'", "long": "= 'BIGINT'",
          "double": "IN ('BIGINT', 'DOUBLE', 'FLOAT') OR _t_{f} LIKE 'DECIMAL%'"}  # fmt: skip
    for name, typ in kind.all_fields.items():
        checks.append(f"CASE WHEN _t_{name} IS NULL OR _t_{name} = 'VOID' THEN 'missing_field:{name}' "
                      f"WHEN NOT (_t_{name} {ok[typ].format(f=name)}) THEN 'wrong_type:{name}' END")  # fmt: skip
    checks.append(f"CASE WHEN schema != {sql_str(kind.name)} OR v != {kind.version} THEN 'unknown_schema_version' END")
    for name in kind.id_fields:
        checks.append(f"CASE WHEN {name} RLIKE {sql_str(BAD_ID_PATTERN)} THEN 'bad_id:{name}' END")
    for name in ("event_id", kind.key_field):
        checks.append(f"CASE WHEN {name} RLIKE {sql_str(BLANK_PATTERN)} THEN 'empty_key:{name}' END")
    for name, typ in kind.fields.items():
        if typ == "double":
            lo, hi = kind.ranges.get(name, (-1.7976931348623157e308, 1.7976931348623157e308))
            checks.append(f"CASE WHEN isnan({name}) OR NOT ({name} BETWEEN {float(lo)!r}D AND {float(hi)!r}D) "
                          f"THEN 'out_of_range:{name}' END")  # fmt: skip
    checks.append(f"CASE WHEN event_time > kafka_ts + {MAX_FUTURE_MS} THEN 'event_time_in_future' END")
    checks.append(f"CASE WHEN event_time < kafka_ts - {MAX_PAST_MS} THEN 'event_time_too_old' END")
    checks.append(f"CASE WHEN key IS NULL OR cast(key AS string) != {kind.key_field} "
                  f"THEN 'key_mismatch:{kind.key_field}' END")  # fmt: skip
    return _first(checks)


@cache
def _classify_sql(topic_kinds: tuple[tuple[str, str], ...]) -> list[list[str]]:
    topics = [(t, KINDS[name]) for t, name in topic_kinds]
    kind = "CASE topic " + " ".join(f"WHEN {sql_str(t)} THEN {sql_str(k.name)}" for t, k in topics) + " END"
    max_bytes = "CASE kind " + " ".join(f"WHEN {sql_str(k.name)} THEN {k.max_bytes}" for k in
                                       {k.name: k for _, k in topics}.values()) + " END"  # fmt: skip
    step1 = [*KAFKA_COLUMNS, f"{kind} AS kind"]
    pre = _first(["CASE WHEN kind IS NULL THEN 'unknown_topic' END",
                  "CASE WHEN value IS NULL THEN 'null_value' END",
                  f"CASE WHEN octet_length(value) > {max_bytes} THEN 'oversize' END",
                  "tormenta_json_defect(value)"])  # fmt: skip
    step2 = [*KAFKA_COLUMNS, "kind", f"{pre} AS _pre"]
    fields = field_columns()
    step3 = [*KAFKA_COLUMNS, "kind", "_pre",
             "CASE WHEN _pre IS NULL THEN try_parse_json(cast(value AS string)) END AS _v"]  # fmt: skip
    step4 = [*KAFKA_COLUMNS, "kind", "_pre", "_v IS NOT NULL AS _parsed",
             "map_keys(try_cast(_v AS map<string, variant>)) AS _keys"]  # fmt: skip
    for name, typ in fields.items():
        step4.append(f"schema_of_variant(variant_get(_v, '$.{name}', 'variant')) AS _t_{name}")
        step4.append(f"try_variant_get(_v, '$.{name}', '{typ}') AS {name}")
    by_kind = "CASE kind " + " ".join(
        f"WHEN {sql_str(k.name)} THEN {_kind_checks(k)}" for k in {k.name: k for _, k in topics}.values()
    ) + " END"  # fmt: skip
    reason = _first(["_pre", "CASE WHEN NOT _parsed THEN 'invalid_json' END", by_kind])
    step5 = [*KAFKA_COLUMNS, "kind", *fields, f"{reason} AS reason"]
    return [step1, step2, step3, step4, step5]


def classify(rows: DataFrame, topics: dict[str, EventKind]) -> DataFrame:
    """Kafka-shaped rows -> the same plus ``kind``, ``reason`` and the typed contract fields.

    Requires ``jvm_sink.register(spark)`` (the ``tormenta_json_defect`` function). The SQL is
    generated once per topic map; each batch costs one ``selectExpr`` per step.
    """
    df = rows
    for step in _classify_sql(tuple(sorted((t, k.name) for t, k in topics.items()))):
        df = df.selectExpr(*step)
    return df


def dedupe(classified: DataFrame) -> DataFrame:
    """Marks every copy of an event after the first (by topic, partition, offset) as
    ``duplicate_event_id``, whatever key or partition the copies came with."""
    return classified.withColumn("reason", F.expr(
        "CASE WHEN reason IS NULL AND row_number() OVER (PARTITION BY kind, event_id, reason IS NULL "
        "ORDER BY topic, partition, offset) > 1 THEN 'duplicate_event_id' ELSE reason END"))  # fmt: skip

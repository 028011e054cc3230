"""The event contracts as Spark SQL: every dead-letter reason is a column expression.

:func:`classify` turns Kafka-shaped rows (``topic, partition, offset, kafka_ts, key, value``) into
the same rows plus ``kind``, ``reason`` (null for a good event) and one typed column per contract
field. The checks, in the order the first failing one names the reason (the same order as
``tormenta.contracts.validate``, the Python reference a test holds this module to):

1. ``unknown_topic``, ``null_value``, ``oversize``;
2. the bytes as JSON and the fields' exact JSON types, in one streaming pass of the JVM sink's
   strict parser (``tormenta_json_defect(value, kind)``, given the contracts declared in
   ``tormenta.contracts``): ``invalid_utf8``, ``invalid_json``, ``duplicate_key``,
   ``nul_character``, ``invalid_unicode``, ``unexpected_field:<f>``, ``missing_field:<f>``,
   ``wrong_type:<f>`` (a number is not a string, ``1.0`` is not a long);
3. the typed fields (``from_json`` with the contract's schema): ``unknown_schema_version``,
   ``bad_id:<f>`` ('|' or a control character in an identifier), ``empty_key:<f>``,
   ``out_of_range:<f>`` (also NaN and infinities),
   ``event_time_in_future`` / ``event_time_too_old`` (against the Kafka record time),
   ``key_mismatch:<f>`` (the Kafka key must be the entity);
4. :func:`dedupe`: ``duplicate_event_id`` for every copy of an event after the first (by topic,
   partition, offset), across keys and partitions of the batch.

A wrong type is a dead letter by construction: nothing here can raise on a record.
"""

from __future__ import annotations

import re
from functools import cache

from pyspark.sql import DataFrame
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


def _first(checks: list[str]) -> str:
    return "coalesce(" + ", ".join(checks) + ")"


def _kind_checks(kind: EventKind) -> str:
    """Reasons from the typed fields of one kind (step 3 above), null when the event is good."""
    checks = [f"CASE WHEN schema != {sql_str(kind.name)} OR v != {kind.version} THEN 'unknown_schema_version' END"]
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
    kinds = {k.name: k for _, k in topics}
    kind = "CASE topic " + " ".join(f"WHEN {sql_str(t)} THEN {sql_str(k.name)}" for t, k in topics) + " END"
    max_bytes = "CASE kind " + " ".join(f"WHEN {sql_str(k.name)} THEN {k.max_bytes}" for k in kinds.values()) + " END"
    step1 = [*KAFKA_COLUMNS, f"{kind} AS kind"]
    pre = _first(["CASE WHEN kind IS NULL THEN 'unknown_topic' END",
                  "CASE WHEN value IS NULL THEN 'null_value' END",
                  f"CASE WHEN octet_length(value) > {max_bytes} THEN 'oversize' END",
                  "tormenta_json_defect(value, kind)"])  # fmt: skip
    step2 = [*KAFKA_COLUMNS, "kind", f"{pre} AS _pre"]
    fields = field_columns()
    schema = ", ".join(f"`{name}` {typ}" for name, typ in fields.items())
    step3 = [*KAFKA_COLUMNS, "kind", "_pre",
             f"CASE WHEN _pre IS NULL THEN from_json(cast(value AS string), {sql_str(schema)}) END AS _e"]  # fmt: skip
    by_kind = "CASE kind " + " ".join(f"WHEN {sql_str(k.name)} THEN {_kind_checks(k)}" for k in kinds.values()) + " END"
    step4 = [*KAFKA_COLUMNS, "kind", "_pre", *[f"_e.`{name}` AS {name}" for name in fields]]
    step5 = [*KAFKA_COLUMNS, "kind", *fields, f"{_first(['_pre', by_kind])} AS reason"]
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

"""One batch of Kafka records through the contracts and business rules into HBase.

``process_batch`` is the whole processing of a micro-batch (called from ``foreachBatch``) and,
with a window label instead of a batch id, of a batch-archetype window. No record crosses Python:

1. Spark SQL classifies every record (``validation.classify``: the contract as column
   expressions) and marks later copies of an event (``validation.dedupe``);
2. the JVM sink looks up, in batched gets, which events another batch already stored (their
   ``d:batch``): those are duplicates too;
3. each kind's rules (``spark_jobs.rules.RULES``) turn the good events into mutations, dead letters become
   mutations of their own, and the JVM sink writes them all in one Spark job with the native
   client's ``BufferedMutator`` (a batch window: HFiles and a bulk load);
4. the writer's report of what it flushed, per table and metric, is the batch's metrics row,
   and count-only rows give an independent count of the records read: a batch where
   read != good + dead fails loudly.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs import jvm_sink
from spark_jobs.context import BatchContext, mutation, mutations, text, with_feature_steps
from spark_jobs.rules import FEATURES, REALTIME, RULES
from spark_jobs.validation import classify, dedupe, event_row_key_sql, sql_str
from tormenta import latency, metrics
from tormenta.contracts import BY_TOPIC, KINDS, EventKind

log = logging.getLogger("tormenta.pipeline")

DEAD_VALUE_LIMIT = 64 * 1024  # raw value kept in a dead letter (the full length is recorded)


@dataclass
class BatchResult:
    label: str
    read: int = 0
    good: int = 0
    dead: int = 0
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    min_event_time: int | None = None
    max_event_time: int | None = None
    started_at: int = 0
    written_at: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_hist: list[int] = field(default_factory=list)  # tormenta.latency buckets
    stored: dict[str, int] = field(default_factory=dict)  # table -> rows the writer flushed
    # "<kind>: <expectation>" -> {"action", "failed"}: records that did not meet it (tormenta.eventkind.Expectation)
    expectations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def balanced(self) -> bool:
        """Every record read is either stored once or dead-lettered with a reason."""
        return self.read == self.good + self.dead


def kafka_rows(raw: DataFrame) -> DataFrame:
    """Kafka source (or Kafka-shaped Parquet) -> topic, partition, offset, kafka_ts (ms), key, value."""
    return raw.select("topic", "partition", "offset",
                      (F.col("timestamp").cast("double") * 1000).cast("long").alias("kafka_ts"), "key", "value")  # fmt: skip


def classified_batch(raw: DataFrame, ctx: BatchContext, topics: dict[str, EventKind]) -> DataFrame:
    """Every record of the batch with its ``reason`` (null: a good event new to HBase),
    ``dup_cross`` (a copy of an event an earlier batch stored) and its kind's features
    (``spark_jobs.rules.FEATURES``, null on other kinds' rows and on dead letters)."""
    spark = raw.sparkSession
    jvm_sink.register(spark)
    # One task per Kafka partition would be 8 tiny tasks per stage for two 4-partition topics: the
    # classification runs in one task per core instead (the dedupe shuffle follows anyway).
    rows = kafka_rows(raw).coalesce(spark.sparkContext.defaultParallelism)  # never more tasks than cores
    checked = dedupe(classify(rows, topics))
    tables = " ".join(f"WHEN {sql_str(k.name)} THEN {sql_str(ctx.t(k.events_table))}" for k in KINDS.values())
    looked = jvm_sink.lookup(
        checked.selectExpr("*", f"CASE WHEN reason IS NULL THEN CASE kind {tables} END END AS _events_table",
                           f"CASE WHEN reason IS NULL THEN {event_row_key_sql()} END AS _event_row"),
        "_events_table", "_event_row", {"_first_batch": "d:batch"}, ctx.settings,
    )  # fmt: skip
    # Stored first by another batch: a duplicate. By this very batch: a replay, which rewrites it.
    cross = f"reason IS NULL AND _first_batch IS NOT NULL AND _first_batch != {sql_str(ctx.label)}"
    out = looked.selectExpr(
        *[c for c in checked.columns if c != "reason"], f"{cross} AS dup_cross",
        f"CASE WHEN {cross} THEN 'duplicate_event_id' ELSE reason END AS reason",
    )  # fmt: skip
    out = with_expectations(out, topics)
    for kind in sorted({k.name for k in topics.values()}):
        out = with_feature_steps(out, FEATURES[kind], when=f"kind = {sql_str(kind)} AND reason IS NULL")
    return out


class ExpectationFailed(RuntimeError):
    """A record did not meet an expectation whose action is ``fail``: the batch stops, unwritten."""


def expectation_label(kind: str, name: str) -> str:
    return f"{kind}: {name}"


def declared_expectations(topics: dict[str, EventKind]) -> list[tuple[str, Any]]:
    """(kind name, Expectation) of every kind the batch reads, in a fixed order."""
    kinds = {k.name: k for k in topics.values()}
    return [(name, e) for name in sorted(kinds) for e in kinds[name].expectations]


def with_expectations(df: DataFrame, topics: dict[str, EventKind]) -> DataFrame:
    """Each kind's expectations over its records that passed the contract (``reason`` null):
    ``_warned`` and ``_failed`` list the warn and fail expectations a record does not meet; a drop
    expectation it does not meet becomes its ``reason`` (``expectation:<name>``), the first one wins."""

    declared = declared_expectations(topics)

    def unmet(kind: str, e) -> str:
        return f"(kind = {sql_str(kind)} AND reason IS NULL AND NOT coalesce(({e.sql}), false))"

    def names(action: str) -> str:
        items = [f"CASE WHEN {unmet(k, e)} THEN {sql_str(expectation_label(k, e.name))} END"
                 for k, e in declared if e.action == action]  # fmt: skip
        return f"filter(array({', '.join(items)}), x -> x IS NOT NULL)" if items else "cast(array() AS array<string>)"

    drops = [f"CASE WHEN {unmet(k, e)} THEN {sql_str('expectation:' + e.name)} END" for k, e in declared
             if e.action == "drop"]  # fmt: skip
    reason = f"coalesce(reason, {', '.join(drops)})" if drops else "reason"
    return df.selectExpr(*[c for c in df.columns if c != "reason"], f"{names('warn')} AS _warned",
                         f"{names('fail')} AS _failed", f"{reason} AS reason")  # fmt: skip


def check_fail_expectations(classified: DataFrame, ctx: BatchContext, topics: dict[str, EventKind]) -> None:
    """Stop the batch (before anything is written) if a record did not meet a fail expectation."""
    if not any(e.action == "fail" for _, e in declared_expectations(topics)):
        return
    failed = classified.where("size(_failed) > 0")
    first = failed.select("_failed", "topic", "partition", "offset").limit(3).collect()
    if first:
        n = failed.count()
        where = ", ".join(f"{r['topic']}/{r['partition']}@{r['offset']}" for r in first)
        raise ExpectationFailed(f"batch {ctx.label}: expectation {first[0]['_failed'][0]!r} (action fail) not met by "
                                f"{n} record(s), e.g. {where}; nothing of this batch was written")  # fmt: skip


def dead_letter(ctx: BatchContext) -> str:
    """SQL: the mutation of a dead letter: poison with its reason and Kafka coordinates, row
    ``<topic>|<partition:04d>|<offset:020d>``. Retry: idempotent (the row is the record's Kafka
    position, the timestamp its Kafka time)."""
    row = "concat_ws('|', topic, lpad(cast(partition AS string), 4, '0'), lpad(cast(offset AS string), 20, '0'))"
    metric = "concat_ws('|', coalesce(kind, ''), reason, cast(coalesce(dup_cross, false) AS string))"
    return mutation(ctx.t("dead_letters"), row, "kafka_ts", metric=metric, cells={
        "d:reason": text("reason"), "d:topic": text("topic"), "d:partition": text("partition"),
        "d:offset": text("offset"), "d:kafka_ts": text("kafka_ts"), "d:key": "coalesce(key, X'')",
        "d:value": f"substring(coalesce(value, X''), 1, {DEAD_VALUE_LIMIT})",
        "d:value_bytes": text("octet_length(coalesce(value, X''))"), "d:batch": text(sql_str(ctx.label)),
    })  # fmt: skip


# Count-only (table ''): every record once, the independent side of read == good + dead.
READ = mutation("", "''", 0, {}, metric="'read'")


def batch_mutations(classified: DataFrame, ctx: BatchContext, refs, topics: dict[str, EventKind]) -> DataFrame:
    """Every mutation of a batch, from its classified records: count-only rows and dead letters
    (one pass), and each kind's rules over its good events."""
    good = classified.where(F.col("reason").isNull())
    warns = [(f"array_contains(_warned, {sql_str(expectation_label(k, e.name))})",
              mutation("", "''", 0, {}, metric=sql_str(f"expect|{expectation_label(k, e.name)}")))
             for k, e in declared_expectations(topics) if e.action == "warn"]  # fmt: skip
    out = [mutations(classified, READ, ("reason IS NOT NULL", dead_letter(ctx)), *warns)]
    for kind in sorted({k.name for k in topics.values()}):
        out += RULES[kind](good.where(F.col("kind") == kind), ctx, refs)
    return union_all(out)


def realtime_topics(topics: dict[str, EventKind]) -> dict[str, EventKind]:
    """The topics whose kind has a stateless real-time rule (``rules.REALTIME``)."""
    return {t: k for t, k in topics.items() if k.name in REALTIME}


def realtime_mutations(raw: DataFrame, ctx: BatchContext, refs, topics: dict[str, EventKind]) -> DataFrame:
    """The real-time lane: Kafka rows -> mutations, each record on its own, in Spark's real-time
    mode (no shuffle, no state, no lookup). The contract's checks and the expectations as in a
    micro-batch; a bad record becomes its dead letter, a good one goes through its kind's
    stateless rule. Not here: duplicates across batches (that needs a lookup; the rule's writes
    are idempotent, so a copy rewrites the same cells) and the per-batch counts. A record that does
    not meet a ``fail`` expectation fails the query (``raise_error``): nothing after it is written."""
    jvm_sink.register(raw.sparkSession)
    checked = with_expectations(classify(kafka_rows(raw), topics).selectExpr("*", "false AS dup_cross"), topics)
    fail = ("CASE WHEN size(_failed) > 0 THEN raise_error(concat('expectation ', _failed[0], ' (action fail) not "
            "met by ', topic, '/', partition, '@', offset)) END")  # fmt: skip
    outputs: list[tuple[str, str]] = [("reason IS NOT NULL", dead_letter(ctx))]
    for kind in sorted({k.name for k in topics.values()}):
        good = f"reason IS NULL AND kind = {sql_str(kind)}"
        outputs += [(good, m) for m in REALTIME[kind](ctx, refs)]
    # One projection of the one source: real-time mode refuses a union of the same source twice
    # (STREAMING_REAL_TIME_MODE.IDENTICAL_SOURCES_IN_UNION_NOT_SUPPORTED).
    return mutations(checked.where(f"{fail} IS NULL"), *outputs)


def union_all(frames: list[DataFrame]) -> DataFrame:
    """The rows of every frame (same columns, by position): one SQL ``UNION ALL`` over temporary
    views, analysed once. ``DataFrame.unionAll`` in a loop analyses the growing tree at every
    step (~60 ms per branch on a micro-batch's plan)."""
    spark = frames[0].sparkSession
    names = [f"_tormenta_union_{uuid.uuid4().hex}_{i}" for i in range(len(frames))]
    for name, frame in zip(names, frames, strict=True):
        frame.createOrReplaceTempView(name)
    try:
        return spark.sql(" UNION ALL ".join(f"SELECT * FROM {name}" for name in names))
    finally:  # the union's plan holds the views' plans: the names are not needed any more
        for name in names:
            spark.catalog.dropTempView(name)


def process_batch(
    raw: DataFrame,
    ctx: BatchContext,
    refs,
    *,
    metrics_query: str | None = None,
    metrics_run: str | None = None,
    topics: dict[str, EventKind] | None = None,
    bulk_staging: str | None = None,
    bulk_partitions: int = 4,
) -> BatchResult:
    """Process one batch of Kafka source rows into HBase; returns its counts.

    ``bulk_staging``: write HFiles there and bulk load them (batch windows) instead of
    BufferedMutator puts (micro-batches)."""
    result = BatchResult(label=ctx.label, started_at=int(time.time() * 1000))
    topics = topics or BY_TOPIC
    refs = refs.get()
    classified = classified_batch(raw, ctx, topics).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        check_fail_expectations(classified, ctx, topics)
        # One Spark job: every write, and the batch's counts and latencies with it.
        union = batch_mutations(classified, ctx, refs, topics)
        if bulk_staging:
            written = jvm_sink.bulk_load(union, ctx.settings, bulk_staging, bulk_partitions,
                                         latency_edges=latency.EDGES_MS)  # fmt: skip
        else:
            # Fewer, larger write tasks: each flushes its mutators once (one round trip per table).
            union = union.coalesce(raw.sparkSession.sparkContext.defaultParallelism)
            written = jvm_sink.write(union, ctx.settings, latency_edges=latency.EDGES_MS)
        result.written_at = int(time.time() * 1000)
    finally:
        classified.unpersist()
    _account(ctx, result, written, topics)
    if metrics_query:
        write_metrics(ctx, metrics_query, result, run_id=metrics_run)
    if not result.balanced():
        raise RuntimeError(f"batch {ctx.label}: read {result.read} != good {result.good} + dead {result.dead}")
    return result


def _merge(fn, a: int | None, b: int) -> int:
    """``fn(a, b)``, or ``b`` when there is no ``a`` yet."""
    return b if a is None else fn(a, b)


def _account(ctx: BatchContext, result: BatchResult, written: dict, topics: dict[str, EventKind] | None = None) -> None:
    """Counts, reasons and latencies of a batch, from what the writer flushed: the event rows of
    each kind are its good events, the dead letters (metric ``<kind>|<reason>|<cross>``) the rest,
    and the count-only rows every record read. So what the metrics say was stored is what HBase
    was handed, row for row, and a record that became neither unbalances the batch."""
    events_tables = {ctx.t(k.events_table): name for name, k in KINDS.items()}
    reasons: dict[str, int] = {}
    fine: dict[int, int] = {}
    hist = [0] * (len(latency.EDGES_MS) + 1)
    max_latency = None
    expected = {expectation_label(k, e.name): {"action": e.action, "failed": 0}
                for k, e in declared_expectations(topics or BY_TOPIC)}  # fmt: skip
    for (table, metric), w in sorted(written.items()):
        if not table:
            if metric.startswith("expect|"):  # a kept record that did not meet a warn expectation
                expected.setdefault(metric[7:], {"action": "warn", "failed": 0})["failed"] += w.rows
            else:
                result.read += w.rows
            continue
        result.stored[table] = result.stored.get(table, 0) + w.rows
        if table in events_tables and metric == "good":
            kind = events_tables[table]
            acc = result.by_kind.setdefault(kind, {"valid": 0, "new": 0, "dup_cross_batch": 0})
            acc["valid"] += w.rows
            acc["new"] += w.rows
            result.good += w.rows
            if w.min_event_time is not None:
                result.min_event_time = _merge(min, result.min_event_time, w.min_event_time)
                result.max_event_time = _merge(max, result.max_event_time, w.max_event_time)
                max_latency = _merge(max, max_latency, w.max_latency_ms)
            hist = [a + b for a, b in zip(hist, w.histogram, strict=True)]
            for b, n in w.fine.items():
                fine[b] = fine.get(b, 0) + n
        elif table == ctx.t("dead_letters"):
            kind, reason, cross = metric.split("|")
            reasons[reason] = reasons.get(reason, 0) + w.rows
            if reason.startswith("expectation:"):
                label = expectation_label(kind, reason[len("expectation:"):])
                expected.setdefault(label, {"action": "drop", "failed": 0})["failed"] += w.rows
            result.dead += w.rows
            if cross == "true":
                acc = result.by_kind.setdefault(kind, {"valid": 0, "new": 0, "dup_cross_batch": 0})
                acc["valid"] += w.rows
                acc["dup_cross_batch"] += w.rows
    result.dead_by_reason = dict(sorted(reasons.items()))
    result.expectations = expected
    if result.good:
        result.latency_hist = hist
        result.latency_ms = {f"p{p}": jvm_sink.fine_percentile(fine, p) for p in (50, 95, 99)}
        result.latency_ms.update(max=float(max_latency), n=float(result.good))


def write_metrics(ctx: BatchContext, query: str, result: BatchResult, run_id: str | None = None) -> None:
    """One row per batch in ``<ns>_microbatch_metrics`` (``<query>|<seq>``) and, for a batch of an
    Airflow run, the same under ``run|<run id>|<seq>`` so a run's batches are one prefix scan.
    Retry: overwrites that batch's rows (``tormenta.metrics``)."""
    with ctx.endpoint.session() as conn:
        metrics.write_result(conn, ctx.namespace, query, ctx.seq, asdict(result), run_id)

"""One batch of Kafka records through the business rules into HBase.

``process_batch`` is the whole processing of a micro-batch (called from ``foreachBatch``) and,
with a window label instead of a batch id, of a batch-archetype window: parse and validate ->
dead letters -> in-batch and cross-batch duplicates -> enrichment from cached reference
tables -> rules -> idempotent HBase writes -> a metrics row.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.hbase_sink import (
    BatchContext,
    geo_partition,
    social_partition,
    write_dead_letters,
    write_social_aggregates,
)
from spark_jobs.transforms.social import add_comment_features
from spark_jobs.transforms.validate import kafka_records, parse_and_validate, split_duplicates, union_all
from tormenta import latency
from tormenta.contracts import BY_TOPIC, GEO, SOCIAL, EventKind
from tormenta.hbase import put_rows
from tormenta.reference import ReferenceCache

log = logging.getLogger("tormenta.pipeline")


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

    def balanced(self) -> bool:
        """Every record read is either stored once or dead-lettered with a reason."""
        return self.read == self.good + self.dead


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)
    n = len(values)

    def pct(p: float) -> float:
        return float(values[min(n - 1, int(round(p / 100 * (n - 1))))])

    return {"p50": pct(50), "p95": pct(95), "p99": pct(99), "max": float(values[-1]), "n": float(n)}


def process_batch(
    raw: DataFrame,
    ctx: BatchContext,
    refs: ReferenceCache,
    *,
    geo_partitions: int = 4,
    metrics_query: str | None = None,
    metrics_run: str | None = None,
    topics: dict[str, EventKind] | None = None,
) -> BatchResult:
    """Process one batch of Kafka source rows (columns of the Kafka source) into HBase."""
    result = BatchResult(label=ctx.label, started_at=int(time.time() * 1000))
    refs = refs.get()
    records = kafka_records(raw).persist()
    try:
        topic_of = {k.name: t for t, k in (topics or BY_TOPIC).items()}
        present = [r["topic"] for r in records.select("topic").distinct().collect()]
        unknown = [t for t in present if t not in (topics or BY_TOPIC)]
        if unknown:
            raise ValueError(f"no contract for topic(s) {unknown}; known: {sorted(topics or BY_TOPIC)}")
        all_dead: list[DataFrame] = []
        summaries: list[dict] = []
        for kind in (SOCIAL, GEO):
            if topic_of.get(kind.name) not in present:
                continue
            parsed = parse_and_validate(records.where(F.col("topic") == topic_of[kind.name]), kind).persist()
            valid = parsed.where("reason IS NULL").drop("reason")
            unique, dups = split_duplicates(valid)
            all_dead += [parsed.where("reason IS NOT NULL"), dups]
            if kind is SOCIAL:
                feats = add_comment_features(unique)
                pols = refs.politicians
                parts = feats.rdd.mapPartitions(lambda rows, c=ctx, p=pols: social_partition(c, p, rows)).collect()
                minute: dict = {}
                authors: dict = {}
                for s in parts:
                    for k, (c, m, snt) in s["minute"].items():
                        acc = minute.setdefault(k, [0, 0, 0.0])
                        acc[0] += c
                        acc[1] += m
                        acc[2] += snt
                    for k, n in s["authors"].items():
                        authors[k] = authors.get(k, 0) + n
                write_social_aggregates(ctx, minute, authors, pols)
            else:
                devs, zones = refs.devices, refs.zones
                by_device = unique.repartition(geo_partitions, "device_id")
                parts = by_device.rdd.mapPartitions(
                    lambda rows, c=ctx, d=devs, z=zones: geo_partition(c, d, z, rows)
                ).collect()
            summaries += parts
            counts = {
                "read": parsed.count(),
                "new": sum(s["new"] for s in parts),
                "dup_cross_batch": sum(s["dup"] for s in parts),
            }
            result.by_kind[kind.name] = counts
            parsed.unpersist()

        dead = union_all(all_dead) if all_dead else None
        if dead is not None:
            dead = dead.persist()
            dead.foreachPartition(lambda rows, c=ctx: write_dead_letters(c, rows))
            reasons = {r["reason"]: r["count"] for r in dead.groupBy("reason").count().collect()}
            dead.unpersist()
        else:
            reasons = {}
        cross = sum(k["dup_cross_batch"] for k in result.by_kind.values())
        if cross:
            reasons["duplicate_event_id"] = reasons.get("duplicate_event_id", 0) + cross
        result.read = records.count()
        result.good = sum(k["new"] for k in result.by_kind.values())
        result.dead = sum(reasons.values())
        result.dead_by_reason = dict(sorted(reasons.items()))
        event_times = [t for s in summaries for t in s["event_times"]]
        result.written_at = int(time.time() * 1000)
        if event_times:
            result.min_event_time, result.max_event_time = min(event_times), max(event_times)
            latencies = [result.written_at - t for t in event_times]
            result.latency_ms = _percentiles(latencies)
            result.latency_hist = latency.histogram(latencies)
    finally:
        records.unpersist()
    if metrics_query:
        write_metrics(ctx, metrics_query, result, run_id=metrics_run)
    if not result.balanced():
        raise RuntimeError(f"batch {ctx.label}: read {result.read} != good {result.good} + dead {result.dead}")
    return result


def metrics_row_key(query: str, seq: int) -> bytes:
    return f"{query}|{seq:015d}".encode()


def run_metrics_row_key(run_id: str, seq: int) -> bytes:
    return f"run|{run_id}|{seq:015d}".encode()


def write_metrics(ctx: BatchContext, query: str, result: BatchResult, run_id: str | None = None) -> None:
    """One row per batch in ``<ns>_batch_metrics`` (``<query>|<seq>``) and, for a batch of an
    Airflow run, the same under ``run|<run id>|<seq>`` so a run's batches are one prefix scan.
    Retry: overwrites that batch's rows."""
    cells = {b"d:result": json.dumps(asdict(result), sort_keys=True).encode()}
    rows = [(metrics_row_key(query, ctx.seq), cells, None)]
    if run_id:
        rows.append((run_metrics_row_key(run_id, ctx.seq), cells, None))
    conn = ctx.endpoint.connect()
    try:
        put_rows(conn, ctx.t("batch_metrics"), rows)
    finally:
        conn.close()

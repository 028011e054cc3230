"""One batch of Kafka records through the business rules into HBase.

``process_batch`` is the whole processing of a micro-batch (called from ``foreachBatch``) and,
with a window label instead of a batch id, of a batch-archetype window. It is **one Spark job**:
every partition (a Kafka topic-partition's offset range, or a part of a window partitioned by
entity) validates its records, dead-letters poison and in-batch copies, enriches from the
cached reference tables, applies the rules and writes idempotently (``hbase_sink``); the driver
merges the partitions' summaries, writes the per-batch aggregate contributions and a metrics
row, and checks that every record read is stored or dead-lettered.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.hbase_sink import BatchContext, process_partition, write_social_aggregates
from tormenta import latency
from tormenta.contracts import BY_TOPIC, EventKind
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


def kafka_rows(raw: DataFrame) -> DataFrame:
    """Kafka source (or Kafka-shaped Parquet) -> topic, partition, offset, kafka_ts (ms), key, value."""
    return raw.select("topic", "partition", "offset",
                      (F.col("timestamp").cast("double") * 1000).cast("long").alias("kafka_ts"), "key", "value")  # fmt: skip


def process_batch(
    raw: DataFrame,
    ctx: BatchContext,
    refs: ReferenceCache,
    *,
    metrics_query: str | None = None,
    metrics_run: str | None = None,
    topics: dict[str, EventKind] | None = None,
) -> BatchResult:
    """Process one batch of Kafka source rows into HBase (one Spark job); returns its counts."""
    result = BatchResult(label=ctx.label, started_at=int(time.time() * 1000))
    refs = refs.get()
    kinds = {t: k.name for t, k in (topics or BY_TOPIC).items()}
    pols, devs, zones = refs.politicians, refs.devices, refs.zones
    parts = kafka_rows(raw).rdd.mapPartitions(
        lambda rows: process_partition(ctx, kinds, pols, devs, zones, rows)
    ).collect()

    minute: dict = {}
    authors: dict = {}
    reasons: dict[str, int] = {}
    event_times: list[int] = []
    for part in parts:
        result.read += part["read"]
        for reason, n in part["dead_by_reason"].items():
            reasons[reason] = reasons.get(reason, 0) + n
        for kind, counts in part["by_kind"].items():
            acc = result.by_kind.setdefault(kind, {"valid": 0, "new": 0, "dup_cross_batch": 0})
            for k, v in counts.items():
                acc[k] += v
        for k, (c, m, snt) in part["minute"].items():
            acc = minute.setdefault(k, [0, 0, 0.0])
            acc[0] += c
            acc[1] += m
            acc[2] += snt
        for k, n in part["authors"].items():
            authors[k] = authors.get(k, 0) + n
        event_times += part["event_times"]
    if minute or authors:
        write_social_aggregates(ctx, minute, authors, pols)
    cross = sum(k["dup_cross_batch"] for k in result.by_kind.values())
    if cross:
        reasons["duplicate_event_id"] = reasons.get("duplicate_event_id", 0) + cross
    result.good = sum(k["new"] for k in result.by_kind.values())
    result.dead = sum(reasons.values())
    result.dead_by_reason = dict(sorted(reasons.items()))
    result.written_at = int(time.time() * 1000)
    if event_times:
        result.min_event_time, result.max_event_time = min(event_times), max(event_times)
        latencies = [result.written_at - t for t in event_times]
        result.latency_ms = _percentiles(latencies)
        result.latency_hist = latency.histogram(latencies)
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

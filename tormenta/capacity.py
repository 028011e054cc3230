"""Cores, pools and the capacity calculator: the source document's rules made executable.

* Never more busy threads than cores (pseudo-parallelism breaks linear scaling), and keep a
  reserve for the system (the document reserves 20 %).
* The always-on streaming job holds its cores permanently (Airflow pool slots); batch work
  queues for what is left instead of squeezing in.
* Memory held per micro-batch = events/s x bytes per event x interval.
* A micro-batch costs a fixed time plus a time per event: an interval shorter than the fixed
  part is never held, whatever the rate; above it, the cores needed grow as the interval's
  spare time shrinks.

    tormenta capacity --rate 5000 --bytes 400 --interval PT1S
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

RESERVE_FRACTION = 0.20
SPARK_POOL = "tormenta_spark"
# The cost of one micro-batch = a fixed part (planning the batch's plan on the driver, the job's
# stages starting, the metrics row: whatever the batch's size) + a part per event. Measured with
# `python -m bench.batch_cost` (the pipeline's process_batch in a warm loop, local[2]) on the
# 2-core reference machine, everything on it: 2,000 records per batch 2.09 s, 20,000 records
# 3.49 s (medians) -> 78 us per record on 2 cores (~6,400 events/s per core) and ~1.9 s fixed.
# B5 (the rate a 1 s interval holds) is 0 there: the fixed part alone is longer.
# Override with TORMENTA_EVENTS_PER_CORE / TORMENTA_BATCH_FIXED_S once your own benchmark says so.
EVENTS_PER_CORE = 6400
BATCH_FIXED_S = 1.9
# A JSON event of ~400 bytes is held as a Kafka record, its JSON string and the parsed row in
# the JVM (the rules run in Spark SQL): the working set of a micro-batch is a few times its raw
# size. An assumption, stated as one.
WORKING_SET_FACTOR = 4.0


def cores_available() -> int:
    """Cores this process may use (``TORMENTA_CORES`` overrides, e.g. for a cluster's size)."""
    raw = os.environ.get("TORMENTA_CORES", "").strip()
    if raw:
        value = int(raw)
        if value < 1:
            raise ValueError(f"TORMENTA_CORES={raw!r} must be >= 1")
        return value
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def reserved_cores(cores: int, fraction: float = RESERVE_FRACTION) -> int:
    """Whole cores kept for the OS, Kafka, HBase and Airflow (20 %, rounded to the nearest core)."""
    return int(math.floor(cores * fraction + 0.5))


def spark_pool_slots(cores: int, fraction: float = RESERVE_FRACTION) -> int:
    """Slots of the ``tormenta_spark`` pool: one per Spark core that jobs may hold at once."""
    return max(1, cores - reserved_cores(cores, fraction))


def stream_cores() -> int:
    """Cores (= pool slots) the streaming job holds for as long as it runs."""
    return max(1, int(os.environ.get("TORMENTA_STREAM_CORES", "1")))


def batch_cores(cores: int | None = None) -> int:
    """Cores (= pool slots) a batch window's Spark job takes: what the streaming job leaves."""
    slots = spark_pool_slots(cores_available() if cores is None else cores)
    return max(1, slots - stream_cores())


def pool_warnings(cores: int, fraction: float = RESERVE_FRACTION) -> list[str]:
    out = []
    if reserved_cores(cores, fraction) == 0:
        out.append(
            f"{cores} core(s): a {fraction:.0%} reserve rounds to 0 whole cores, so Kafka, HBase and Airflow "
            f"share the cores with the Spark jobs; expect contention (size the pool with TORMENTA_CORES)"
        )
    if spark_pool_slots(cores, fraction) < stream_cores() + 1:
        out.append(
            f"the {SPARK_POOL} pool has {spark_pool_slots(cores, fraction)} slot(s): with the streaming job "
            f"holding {stream_cores()}, batch windows wait until it stops"
        )
    return out


@dataclass(frozen=True)
class Capacity:
    events_per_s: float
    bytes_per_event: int
    interval_s: float
    records_per_batch: int
    raw_bytes_per_batch: int
    working_set_bytes: int
    cores_needed: int
    events_per_core: float
    batch_fixed_s: float
    cores_available: int
    spark_slots: int
    warnings: tuple[str, ...]

    def as_dict(self) -> dict:
        return asdict(self)


def estimate(
    events_per_s: float,
    bytes_per_event: int,
    interval_s: float,
    *,
    cores: int | None = None,
    spark_cores: int | None = None,
    ingestors: int = 0,
    events_per_core: float | None = None,
    batch_fixed_s: float | None = None,
) -> Capacity:
    """Memory held by one micro-batch and cores needed for a rate; warnings when it does not fit.

    Cores needed: a batch of ``rate x interval`` events must be processed, at ``events_per_core``
    per core, in what the interval leaves after the batch's fixed cost."""
    if events_per_s <= 0 or bytes_per_event <= 0 or interval_s <= 0:
        raise ValueError("rate, bytes per event and interval must be > 0")
    cores = cores_available() if cores is None else cores
    spark_cores = stream_cores() if spark_cores is None else spark_cores
    per_core = events_per_core or float(os.environ.get("TORMENTA_EVENTS_PER_CORE", EVENTS_PER_CORE))
    fixed = float(os.environ.get("TORMENTA_BATCH_FIXED_S", BATCH_FIXED_S)) if batch_fixed_s is None else batch_fixed_s
    records = int(math.ceil(events_per_s * interval_s))
    raw = records * bytes_per_event
    slots = spark_pool_slots(cores)
    warnings = list(pool_warnings(cores))
    if interval_s <= fixed:
        needed = max(1, math.ceil(events_per_s / per_core))
        warnings.append(
            f"a micro-batch costs ~{fixed:g} s whatever its size (its fixed part): a {interval_s:g} s interval is "
            f"not held at any rate; with an interval of {2 * fixed:g} s or more, half of it is left for the events"
        )
    else:
        needed = max(1, math.ceil(records / (per_core * (interval_s - fixed))))
    if interval_s > fixed and needed > spark_cores:
        warnings.append(
            f"{events_per_s:g} events/s needs ~{needed} Spark core(s) at {per_core:g} events/s per core and "
            f"{fixed:g} s fixed per batch; the streaming job has {spark_cores}: micro-batches will overrun the "
            f"{interval_s:g} s interval"
        )
    if spark_cores > slots:
        warnings.append(f"the streaming job asks for {spark_cores} cores but the {SPARK_POOL} pool has {slots}")
    busy = spark_cores + ingestors
    if busy > cores:
        warnings.append(
            f"configured parallelism exceeds the cores: {spark_cores} Spark core(s) + {ingestors} ingestor "
            f"process(es) = {busy} busy threads on {cores} core(s) (pseudo-parallelism: more threads than cores)"
        )
    return Capacity(
        events_per_s=events_per_s,
        bytes_per_event=bytes_per_event,
        interval_s=interval_s,
        records_per_batch=records,
        raw_bytes_per_batch=raw,
        working_set_bytes=int(raw * WORKING_SET_FACTOR),
        cores_needed=needed,
        events_per_core=per_core,
        batch_fixed_s=fixed,
        cores_available=cores,
        spark_slots=slots,
        warnings=tuple(warnings),
    )


def table_markdown(rows: list[tuple[float, int, float]], cores: int = 2, spark_cores: int = 1) -> str:
    """Markdown table of estimates (for DAG docs and the README)."""
    out = ["| events/s | bytes/event | interval | records/batch | held per batch | working set | cores needed |",
           "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for rate, size, interval in rows:
        c = estimate(rate, size, interval, cores=cores, spark_cores=spark_cores, events_per_core=EVENTS_PER_CORE)
        out.append(
            f"| {rate:,.0f} | {size} | {interval:g} s | {c.records_per_batch:,} | {_mib(c.raw_bytes_per_batch)} "
            f"| {_mib(c.working_set_bytes)} | {c.cores_needed} |"
        )
    return "\n".join(out)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"

"""Python handles on the project's JVM sink (``jvm/sink``): DataFrames in, DataFrames out.

Every call hands Spark a DataFrame's JVM handle through py4j; the rows stay in the executors'
JVMs and never cross Python. What comes back is a small summary (counts per table) or a new
DataFrame.

- :func:`write`: mutations ``(table, row, ts, cells)`` -> HBase through ``BufferedMutator``.
- :func:`lookup`: batched gets that add HBase cells as columns (cross-batch duplicates, device
  state as of before a batch, reference rows for enrichment).
- :func:`register`: the SQL function ``tormenta_json_defect`` (strict JSON; ``StrictJson.java``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.classic.dataframe import DataFrame as ClassicDataFrame

WRITE_BUFFER_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Written:
    """What the writer handed to HBase and flushed for one table and metric."""

    rows: int
    cells: int
    min_event_time: int | None = None
    max_event_time: int | None = None
    max_latency_ms: int | None = None
    histogram: tuple[int, ...] = ()  # over the edges given to write()
    fine: dict[int, int] = field(default_factory=dict)  # bucket floor(ln(1 + ms) / ln 1.01) -> count


FINE_GROWTH = 1.01


def fine_percentile(fine: dict[int, int], p: float) -> float | None:
    """The p-th percentile (nearest rank) of latencies in fine buckets: within 1 % of the exact value."""
    n = sum(fine.values())
    if not n:
        return None
    rank = min(n - 1, int(round(p / 100 * (n - 1))))
    seen = 0
    for bucket in sorted(fine):
        seen += fine[bucket]
        if seen > rank:
            return round(FINE_GROWTH ** (bucket + 0.5) - 1, 1)
    return None


_CLASSES: dict[tuple[object, str], object] = {}  # (py4j gateway, class) -> its handle
_REGISTERED: set[tuple[object, str]] = set()  # (gateway, JVM session id) with the SQL function


def _jvm(spark: SparkSession, name: str):
    """The sink's class ``name``, looked up once per JVM: each lookup through ``_jvm.io...`` is a
    round trip per package level, with class loading attempts on the JVM side."""
    gateway = spark.sparkContext._gateway
    handle = _CLASSES.get((gateway, name))
    if handle is None:
        handle = _CLASSES[(gateway, name)] = getattr(spark.sparkContext._jvm.io.tormenta.spark, name)
    return handle


def register(spark: SparkSession) -> None:
    """Make ``tormenta_json_defect(value BINARY[, kind STRING])`` available to Spark SQL in this
    session (once); with a kind it also checks the fields and their exact JSON types against the
    contracts of ``tormenta.contracts.KINDS`` (handed to the JVM as text, declared only there)."""
    from tormenta.contracts import KINDS

    key = (spark.sparkContext._gateway, spark._jsparkSession.sessionUUID())
    if key in _REGISTERED:
        return
    spec = ";".join(f"{k.name}|" + ",".join(f"{f}:{t}" for f, t in k.all_fields.items()) for k in KINDS.values())
    _jvm(spark, "StrictJson").register(spark._jsparkSession, spec)
    _REGISTERED.add(key)


def write(mutations: DataFrame, settings: str, buffer_bytes: int = WRITE_BUFFER_BYTES,
          latency_edges: tuple[int, ...] = ()) -> dict[tuple[str, str], Written]:  # fmt: skip
    """Write every mutation (one Spark job); returns, per (table, metric), what was flushed.

    Optional mutation columns ``metric`` (rows are counted per value) and ``event_time`` (latency
    from the event to its task's flush, as a histogram over ``latency_edges``) make the write the
    batch's bookkeeping too. Retry: idempotent (explicit cell timestamps: the same mutations
    overwrite the same cells).
    """
    spark = mutations.sparkSession
    out = _jvm(spark, "HBaseWriter").write(mutations._jdf, settings, buffer_bytes, _edges(spark, latency_edges))
    return _report(out)


REALTIME_FLUSH_MS = 50  # the real-time sink flushes a row once it waited this long (timer: every half of it)


def foreach_writer(writer, settings: str, buffer_bytes: int = WRITE_BUFFER_BYTES, flush_ms: int = REALTIME_FLUSH_MS):
    """A ``DataStreamWriter`` of mutations -> the same, writing them through the JVM
    ``HBaseForeachWriter`` (a foreach sink, which real-time mode accepts; ``foreachBatch`` it
    refuses). PySpark's ``foreach`` takes only Python writers, so the JVM writer is set on the
    JVM side of the same builder."""
    spark = writer._spark
    writer._jwrite = writer._jwrite.foreach(_jvm(spark, "HBaseForeachWriter")(settings, buffer_bytes, flush_ms))
    return writer


def bulk_load(mutations: DataFrame, settings: str, staging_dir: str, partitions: int,
              latency_edges: tuple[int, ...] = ()) -> dict[tuple[str, str], Written]:  # fmt: skip
    """Write the mutations as HFiles under ``staging_dir`` (a Hadoop path the region servers can
    read: ``file:///...`` locally, ``hdfs://...`` on a cluster), sorted by row in ``partitions``
    parts, and bulk load them table by table; returns the same report as :func:`write`, with
    latencies measured when the load returned (to the second).

    Retry: idempotent (explicit cell timestamps; the staging folder is emptied first).
    """
    spark = mutations.sparkSession
    out = _jvm(spark, "HFileBulkLoad").load(mutations._jdf, settings, staging_dir, int(partitions),
                                         _edges(spark, latency_edges))  # fmt: skip
    return _report(out)


def _edges(spark: SparkSession, latency_edges: tuple[int, ...]):
    gateway = spark.sparkContext._gateway
    edges = gateway.new_array(gateway.jvm.long, len(latency_edges))
    for i, e in enumerate(latency_edges):
        edges[i] = int(e)
    return edges


def _report(out: str) -> dict[tuple[str, str], Written]:
    result = {}
    for line in filter(None, out.splitlines()):
        table, metric, rows, cells, tmin, tmax, lmax, hist, fine = line.split("\t")
        result[(table, metric)] = Written(
            int(rows), int(cells), int(tmin) if tmin else None, int(tmax) if tmax else None,
            int(lmax) if lmax else None, tuple(int(n) for n in hist.split(",") if n),
            {int(b): int(n) for b, n in (pair.split(":") for pair in fine.split(",") if pair)},
        )  # fmt: skip
    return result


def lookup(df: DataFrame, table_col: str, key_col: str, columns: dict[str, str], settings: str, *,
           before_ts: int = 0, cache_seconds: int = 0) -> DataFrame:  # fmt: skip
    """``df`` plus one string column per ``alias -> "family:qualifier"`` read from the table named
    in ``table_col`` at the row key in ``key_col`` (null when absent). ``before_ts``: only cells
    older than it (a replayed batch reads what its first attempt read). Read-only."""
    spark = df.sparkSession
    gateway = spark.sparkContext._gateway
    names = list(columns)
    cols = gateway.new_array(gateway.jvm.java.lang.String, len(names))
    aliases = gateway.new_array(gateway.jvm.java.lang.String, len(names))
    for i, alias in enumerate(names):
        cols[i], aliases[i] = columns[alias], alias
    jdf = _jvm(spark, "HBaseLookup").lookup(df._jdf, table_col, key_col, cols, aliases, int(before_ts),
                                         int(cache_seconds), settings)  # fmt: skip
    return ClassicDataFrame(jdf, spark)

"""B3: the JVM sink's rows/s (BufferedMutator from Spark's executors, what the jobs use) vs HBase's
PerformanceEvaluation (sequentialWrite, native client, same server), next to the Thrift paths
(batched puts, one put per row) for comparison.

Rows carry what a stored social comment carries: 13 cells, ~330 bytes with keys. PE writes one
cell per row; it runs with ``--valueSize`` equal to our bytes per row, so both move the same bytes.
Like the sink, every row of a batch carries the batch's cell timestamp (Thrift 1 takes one
timestamp per mutateRows call).
"""

from __future__ import annotations

import re

from bench.common import Figure, Stopwatch, run_java, settings, tag


def rows(n: int, offset: int = 0):
    from tormenta.contracts import event_row_key

    for i in range(offset, offset + n):
        eid = f"pol-03-c{i:012d}"
        cells = {
            b"d:event_time": b"1795700000000", b"d:sent_at": b"1795700000001", b"d:source": b"bench/0of1",
            b"d:kafka": f"bench:0:{i}".encode(), b"d:batch": b"s0001000000001", b"d:page_id": b"pol-03",
            b"d:post_id": b"pol-03-p00000001", b"d:author": b"user0042",
            b"d:text": b"el gobierno propuesta ley votar pueblo bueno corrupto mentira gracias apoyo escandalo",
            b"d:lang": b"es", b"d:politician": b"Politician 3", b"d:party": b"Party B", b"d:mentions": b"1",
        }  # fmt: skip
        yield event_row_key(eid), cells, 1_000_000_001  # one timestamp per batch, as the sink writes events


def row_bytes() -> int:
    key, cells, _ = next(rows(1))
    return len(key) + sum(len(k) + len(v) for k, v in cells.items())


def batched(conn, table: str, n: int) -> float:
    from tormenta.hbase import put_rows

    with Stopwatch() as sw:
        put_rows(conn, table, rows(n), 1000)
    return n / sw.seconds


def jvm_sink(table: str, n: int) -> float:
    """The jobs' writer: the same rows as a Spark DataFrame (made in the JVM and cached first, so
    only the write is timed) through spark_jobs.jvm_sink.write on local[2]."""
    from spark_jobs import jvm_sink as sink
    from spark_jobs.session import get_session
    from spark_jobs.validation import sql_str
    from tormenta.hbase import HBaseEndpoint

    s = settings()
    _, cells, _ = next(rows(1))
    spark = get_session("bench-b3", master="local[2]")
    pairs = ", ".join(f"{sql_str(k.decode())}, cast({sql_str(v.decode())} AS binary)" for k, v in cells.items())
    df = spark.range(n).selectExpr(
        f"{sql_str(table)} AS table",
        "concat(substring(md5(concat('pol-03-c', lpad(cast(id AS string), 12, '0'))), 1, 2), '|pol-03-c', "
        "lpad(cast(id AS string), 12, '0')) AS row",
        "1000000001L AS ts", f"map({pairs}) AS cells", "CAST(NULL AS string) AS metric",
        "CAST(NULL AS bigint) AS event_time").persist()  # fmt: skip
    df.count()
    settings_text = HBaseEndpoint(zookeeper_quorum=f"{s.bind_host}:{s.zookeeper_port}").native_settings()
    with Stopwatch() as sw:
        written = sink.write(df, settings_text)
    df.unpersist()
    assert written[(table, "")].rows == n, written
    return n / sw.seconds


def one_by_one(conn, table: str, n: int) -> float:
    t = conn.table(table)
    with Stopwatch() as sw:
        for key, cells, ts in rows(n, offset=10_000_000):
            t.put(key, cells, timestamp=ts)
    return n / sw.seconds


def performance_evaluation(n: int, value_size: int, table: str) -> float:
    from tormenta import jvm

    s = settings()
    jvm.ensure_jars("bench")
    out = run_java(
        "org.apache.hadoop.hbase.PerformanceEvaluation",
        ["--nomapred", f"--rows={n}", f"--valueSize={value_size}", f"--table={table}", "--autoFlush=false",
         "sequentialWrite", "1"],
        ("bench", "hbase"), heap="768m",
        extra_jvm=[f"-Dhbase.zookeeper.quorum={s.bind_host}", f"-Dhbase.zookeeper.property.clientPort={s.zookeeper_port}",
                   "-Dlog4j2.level=INFO"],
    )  # fmt: skip
    text = out
    m = re.search(r"Summary of timings \(ms\): \[(\d+)\]", text) or re.search(r"in (\d+)ms at offset", text)
    if not m:
        raise RuntimeError(f"unexpected PerformanceEvaluation output:\n{text[-1500:]}")
    return n / (int(m.group(1)) / 1000)


def run(runs: int, n: int) -> list[Figure]:
    from tormenta.hbase import HBaseEndpoint, ensure_table

    s = settings()
    size = row_bytes()
    f_jvm = Figure("B3", "HBase sink: JVM BufferedMutator from Spark (local[2])", "rows/s")
    f_ours = Figure("B3", "batched Thrift puts (1000 rows/call)", "rows/s")
    f_one = Figure("B3", "one Thrift put per row", "rows/s")
    f_pe = Figure("B3", "HBase PerformanceEvaluation sequentialWrite", "rows/s")
    r_pe = Figure("B3", "sink / PerformanceEvaluation", "ratio", target=">= 0.50")
    r_one = Figure("B3", "sink / one Thrift put per row", "ratio", target=">= 10")
    for i in range(runs):
        t = tag()
        with HBaseEndpoint(s.bind_host, s.thrift_port).session() as conn:
            table = f"bench_b3_{t}"
            ensure_table(conn, table, {"d": {"max_versions": 1}})
            ensure_table(conn, f"{table}_jvm", {"d": {"max_versions": 1}})
            jvm = jvm_sink(f"{table}_jvm", n)
            ours = batched(conn, table, n)
            one = one_by_one(conn, table, max(1000, n // 20))
            pe = performance_evaluation(n, size, f"bench_pe_{t}")
            for name in (table, f"{table}_jvm", f"bench_pe_{t}"):
                conn.delete_table(name, disable=True)
        f_jvm.values.append(round(jvm, 1))
        f_ours.values.append(round(ours, 1))
        f_one.values.append(round(one, 1))
        f_pe.values.append(round(pe, 1))
        r_pe.values.append(round(jvm / pe, 3))
        r_one.values.append(round(jvm / one, 2))
        print(f"  B3 run {i + 1}: JVM sink {jvm:,.0f}/s, Thrift batched {ours:,.0f}/s, one-by-one {one:,.0f}/s, "
              f"PE {pe:,.0f}/s", flush=True)  # fmt: skip
    cells = len(next(rows(1))[1])
    for f in (f_jvm, f_ours, f_one, f_pe):
        f.note = f"{n:,} rows (one-by-one: {max(1000, n // 20):,}), {cells} cells and ~{size} bytes per row (PE: 1 cell)"
    return [f_jvm, f_ours, f_one, f_pe, r_pe, r_one]

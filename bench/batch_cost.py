"""The cost of one micro-batch, fixed part and per record: ``process_batch`` (the function the
streaming job's ``foreachBatch`` calls) run in a loop over the same rows, warm JVM, local[2]:

    .venv/bin/python -m bench.batch_cost --parquet-dir var/bench/<b7 run>/parquet --rows 2000
    .venv/bin/python -m bench.batch_cost --parquet-dir ... --rows 20000

Prints every batch's seconds and the median of the second half (the JVM keeps warming up for
~10 batches). Two sizes give the fixed part and the cost per record. Needs the local stack and
a landed window (Kafka-shaped Parquet, e.g. from B7). Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.batch_cost", description=__doc__.splitlines()[0])
    p.add_argument("--parquet-dir", required=True)
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--batches", type=int, default=20)
    args = p.parse_args(argv)
    from spark_jobs.context import BatchContext
    from spark_jobs.pipeline import process_batch
    from spark_jobs.session import get_session
    from tormenta import reference, schema
    from tormenta.hbase import HBaseEndpoint
    from tormenta.settings import load

    s = load()
    spark = get_session("tormenta-batch-cost", master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.adaptive.enabled", "false")  # as the streaming job runs
    spark.conf.set("spark.sql.shuffle.partitions", str(spark.sparkContext.defaultParallelism))
    endpoint = HBaseEndpoint(s.bind_host, s.thrift_port, zookeeper_quorum=f"{s.bind_host}:{s.zookeeper_port}")
    namespace = "batchcost"
    refs = reference.ensure(endpoint, namespace)
    source = spark.read.parquet(args.parquet_dir)
    rows = spark.createDataFrame(source.limit(args.rows).collect(), source.schema).repartition(4).cache()
    rows.count()
    seconds = []
    for i in range(args.batches):
        ctx = BatchContext(label=f"s{i:013d}", seq=i, endpoint=endpoint, namespace=namespace)
        t0 = time.monotonic()
        process_batch(rows, ctx, refs, metrics_query="batch-cost")
        seconds.append(time.monotonic() - t0)
    warm = seconds[len(seconds) // 2 :]
    print(" ".join(f"{x:.2f}" for x in seconds))
    print(f"{args.rows} rows per batch: median {statistics.median(warm):.2f} s [{min(warm):.2f}, {max(warm):.2f}] "
          f"over the last {len(warm)} of {len(seconds)} batches")  # fmt: skip
    with endpoint.session() as conn:
        schema.drop_namespace(conn, namespace)
    return 0


if __name__ == "__main__":
    sys.exit(main())

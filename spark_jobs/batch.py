"""Batch archetype: a fixed window -> big file -> raw + Parquet -> the same business rules -> HBase.

    spark-submit spark_jobs/batch.py land --source kafka --bootstrap 127.0.0.1:9092 \
        --topics tormenta.social.comments,tormenta.geo.positions \
        --start-ms 1764115200000 --end-ms 1764201600000 --parts 4 \
        --raw-dir var/landing/w.../raw --parquet-dir var/warehouse/w.../parquet
    spark-submit spark_jobs/batch.py process --parquet-dir ... --namespace tormenta_batch \
        --source-namespace tormenta --label w... --seq 1764115200000 --parts 4

``land`` takes the window's records — from Kafka by record timestamp (the events the streaming
path received, Kafka being the archive) or from a file a source client dumped into the landing
folder — keeps them raw (JSON lines) and as Parquet split into ``--parts`` files by entity
(topic, Kafka key), each in Kafka order. ``process`` reads those parts in parallel and calls the very
``process_batch`` the streaming job calls, with the window as the batch: same validation, dead
letters, dedupe, enrichment, rules and idempotent writes. Re-running a window rewrites the
same cells with the same timestamps, so HBase ends up identical.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from spark_jobs.cli_args import hbase_endpoint

KAFKA_COLUMNS = ("topic", "partition", "offset", "key", "value", "timestamp")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options of ``tormenta.jobs.LandArgs`` / ``ProcessArgs`` (what the DAG builds), and the job's checks."""
    from tormenta.jobs import batch_parser

    p = batch_parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    if not 1 <= args.parts <= 1024:
        p.error("--parts must be in [1, 1024]")
    if args.step == "land":
        if args.end_ms <= args.start_ms:
            p.error("--end-ms must be after --start-ms")
        if args.source == "kafka" and not args.topics:
            p.error("--topics is required with --source kafka")
        if args.source == "file" and not args.file:
            p.error("--file is required with --source file")
    else:
        from tormenta.contracts import check_namespace

        for name in ("namespace", "source_namespace"):
            try:
                check_namespace(getattr(args, name))
            except ValueError as exc:
                p.error(f"--{name.replace('_', '-')}: {exc}")
        if not re.fullmatch(r"w[0-9]{12}-[0-9]{12}", args.label):
            p.error("--label must look like w<yyyyMMddHHmm>-<yyyyMMddHHmm>")
    return args


def land(spark, args: argparse.Namespace) -> dict:
    from pyspark.sql import functions as F

    if args.source == "kafka":
        df = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", args.bootstrap)
            .option("subscribe", args.topics)
            .option("startingTimestamp", str(args.start_ms))
            .option("endingTimestamp", str(args.end_ms))
            .option("startingOffsetsByTimestampStrategy", "latest")
            .option("failOnDataLoss", "true")
            .load()
            .select(*KAFKA_COLUMNS)
        )
        # offsetsForTimes is "first offset at or after": the filter makes the window exact.
        ts_ms = (F.col("timestamp").cast("double") * 1000).cast("long")
        df = df.where((ts_ms >= args.start_ms) & (ts_ms < args.end_ms))
        raw = df.select("topic", "partition", "offset", F.col("key").cast("string").alias("key"),
                        F.col("value").cast("string").alias("value"), ts_ms.alias("timestamp"))  # fmt: skip
        raw.write.mode("overwrite").option("compression", "none").json(args.raw_dir)
    else:
        schema = "topic string, partition int, offset long, key string, value string, timestamp long"
        raw = spark.read.schema(schema).json(args.file)
        df = raw.select("topic", "partition", "offset", F.col("key").cast("binary").alias("key"),
                        F.col("value").cast("binary").alias("value"),
                        (F.col("timestamp") / 1000).cast("timestamp").alias("timestamp"))  # fmt: skip
    # The big file split into N parts by entity (the Kafka key): deterministic, every entity's
    # records in one part, in Kafka order.
    parts = df.repartition(args.parts, "topic", "key").sortWithinPartitions("topic", "partition", "offset")
    parts.write.mode("overwrite").parquet(args.parquet_dir)
    written = spark.read.parquet(args.parquet_dir)
    return {"step": "land", "rows": written.count(), "parts": written.rdd.getNumPartitions()}


def process(spark, args: argparse.Namespace) -> dict:
    from spark_jobs.context import BatchContext
    from spark_jobs.pipeline import process_batch
    from tormenta import reference
    from tormenta.contracts import topics_for
    from tormenta.control import ControlPlane

    endpoint = hbase_endpoint(args)
    refs = reference.ensure(endpoint, args.namespace)  # tables + reference data; idempotent
    ControlPlane(endpoint, args.namespace).claim_role("batch")  # never a stream's namespace
    # The parts as landed: the rules shuffle by what they group on (event id, device, page), so the
    # input needs no partitioning of its own.
    df = spark.read.parquet(args.parquet_dir)
    ctx = BatchContext(label=args.label, seq=args.seq, endpoint=endpoint, namespace=args.namespace)
    staging = None
    if args.write == "bulk":
        from pathlib import Path

        from tormenta.settings import is_uri

        if args.staging_dir:
            staging = args.staging_dir
        elif is_uri(args.parquet_dir):  # next to the parquet folder, on the same file system
            staging = args.parquet_dir.rstrip("/").rsplit("/", 1)[0] + "/hfiles"
        else:
            staging = (Path(args.parquet_dir).resolve().parent / "hfiles").as_uri()
    res = process_batch(df, ctx, refs, topics=topics_for(args.source_namespace), bulk_staging=staging,
                        bulk_partitions=args.parts)  # fmt: skip
    return {"step": "process", "label": res.label, "read": res.read, "good": res.good, "dead": res.dead,
            "dead_by_reason": res.dead_by_reason, "by_kind": res.by_kind, "latency_ms": res.latency_ms,
            "latency_hist": res.latency_hist,
            "min_event_time": res.min_event_time, "max_event_time": res.max_event_time,
            "started_at": res.started_at, "written_at": res.written_at,
            "input_parts": args.parts, "write": args.write, "stored": res.stored,
            "expectations": res.expectations}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from spark_jobs.session import get_session

    spark = get_session(f"tormenta-batch-{args.step}")
    t0 = time.monotonic()
    from tormenta import failures
    from tormenta.control import RoleError

    try:
        out = land(spark, args) if args.step == "land" else process(spark, args)
    except RoleError as exc:  # the operator fails the task without retries, with this line as the reason
        print(f"{failures.FATAL_PREFIX} {exc}", file=sys.stderr, flush=True)
        return failures.EXIT_FATAL
    out["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(out, sort_keys=True), flush=True)
    if args.report:  # what the DAG's record task reads
        from pathlib import Path

        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(out, sort_keys=True))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

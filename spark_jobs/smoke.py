"""Smoke job: read a Kafka topic through the official connector, write one HBase row per event.

    spark-submit --jars <connector jars> spark_jobs/smoke.py \
        --bootstrap 127.0.0.1:9092 --topic tormenta.smoke --tag run42 \
        --hbase-host 127.0.0.1 --hbase-port 9090

Reads the topic as a bounded batch (earliest -> latest), keeps the events of ``--tag`` and
upserts them into ``tormenta_smoke`` keyed by event id, so running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

log = logging.getLogger("tormenta.spark_jobs.smoke")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options of ``tormenta.jobs.SmokeArgs`` (what the DAG builds)."""
    from tormenta.jobs import SmokeArgs

    return SmokeArgs.parser(__doc__.splitlines()[0]).parse_args(argv)


def to_row(value: bytes, partition: int, offset: int, timestamp_ms: int):
    """Kafka record -> (row key, cells, cell timestamp). Pure: unit-tested without Spark."""
    event = json.loads(value)
    cells = {
        b"d:seq": str(event["seq"]).encode(),
        b"d:device": str(event["device"]).encode(),
        b"d:kafka": f"{partition}:{offset}".encode(),
    }
    return event["event_id"].encode(), cells, int(event.get("event_time", timestamp_ms))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from pyspark.sql import functions as F

    from spark_jobs.session import get_session
    from tormenta.hbase import HBaseEndpoint, ensure_table, put_rows
    from tormenta.smoke import FAMILIES

    endpoint = HBaseEndpoint(args.hbase_host, args.hbase_port)
    with endpoint.session() as conn:
        ensure_table(conn, args.table, FAMILIES)

    spark = get_session("tormenta-smoke")
    df = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .option("failOnDataLoss", "true")
        .load()
        .select("value", "partition", "offset", (F.col("timestamp").cast("double") * 1000).cast("long").alias("ts"))
        .where(F.get_json_object(F.col("value").cast("string"), "$.event_id").startswith(args.tag + "-"))
    )

    table = args.table

    def write_partition(rows) -> None:
        # One connection per partition, opened only when the partition has rows.
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return
        with endpoint.session() as c:
            def gen():
                for r in (first, *it):
                    yield to_row(bytes(r.value), r.partition, r.offset, r.ts)

            put_rows(c, table, gen())

    df.foreachPartition(write_partition)
    written = df.count()
    log.warning("smoke: %d events of tag %s written to HBase table %s", written, args.tag, table)
    print(f"TORMENTA_SMOKE_ROWS={written}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""spark-submit job of B2: read a whole topic through the Kafka connector into Spark's no-op
sink, as a Structured Streaming query (trigger availableNow), and print records/s as JSON.

Timed inside the driver, after the session exists: JVM start-up is not counted.
"""

from __future__ import annotations

import json
import sys
import time


def main(bootstrap: str, topic: str, checkpoint: str) -> None:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    df = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
          .option("startingOffsets", "earliest").option("failOnDataLoss", "true").load())  # fmt: skip
    t0 = time.perf_counter()
    q = df.writeStream.format("noop").option("checkpointLocation", checkpoint).trigger(availableNow=True).start()
    q.awaitTermination()
    seconds = time.perf_counter() - t0
    rows = sum(p["numInputRows"] for p in q.recentProgress)
    print(json.dumps({"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:4])

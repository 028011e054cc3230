"""Physical plans of one micro-batch and one batch window, as the pipeline builds them:
``python -m bench.plans`` writes ``bench/results/plan-micro-batch.txt`` and
``plan-batch-window.txt`` (needs the local stack and a landed window, e.g. from B7).

The micro-batch plan is that of a Kafka batch read of the two topics: inside ``foreachBatch``
the same pipeline runs over the same rows, only the scan node differs. The plans are checked
for Python evaluation nodes (``BatchEvalPython``, ``ArrowEvalPython``, ``*InPandas``...): there
must be none.
"""

from __future__ import annotations

import argparse
import re
import sys

from bench.common import RESULTS

PYTHON_NODES = re.compile(r"Python|Pandas|Arrow", re.IGNORECASE)


def plans(parquet_dir: str, namespace: str = "plans") -> dict[str, str]:
    from spark_jobs.context import BatchContext
    from spark_jobs.pipeline import batch_mutations, classified_batch
    from spark_jobs.session import get_session
    from tormenta import reference
    from tormenta.contracts import topics_for
    from tormenta.hbase import HBaseEndpoint
    from tormenta.settings import load

    s = load()
    spark = get_session("tormenta-plans", master="local[2]")
    endpoint = HBaseEndpoint(s.bind_host, s.thrift_port, zookeeper_quorum=f"{s.bind_host}:{s.zookeeper_port}")
    refs = reference.ensure(endpoint, namespace).get()
    topics = topics_for("tormenta")
    out = {}
    for name, raw, ctx, adaptive in (
        ("micro-batch",
         spark.read.format("kafka").option("kafka.bootstrap.servers", s.kafka_bootstrap)
         .option("subscribe", ",".join(sorted(topics))).load(),
         BatchContext(label="s0000000000042", seq=42, endpoint=endpoint, namespace=namespace), False),
        ("batch-window", spark.read.parquet(parquet_dir),
         BatchContext(label="w202601010000-202601020000", seq=1767225600000, endpoint=endpoint,
                      namespace=namespace), True),
    ):  # fmt: skip
        spark.conf.set("spark.sql.adaptive.enabled", str(adaptive).lower())  # as the jobs run
        classified = classified_batch(raw, ctx, topics).persist()
        mutations = batch_mutations(classified, ctx, refs, topics)
        text = mutations._jdf.queryExecution().executedPlan().treeString()
        out[name] = re.sub(r"#\d+L?", "", text)
        classified.unpersist()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plans", description=__doc__.splitlines()[0])
    p.add_argument("--parquet-dir", required=True, help="a landed batch window (Kafka-shaped Parquet)")
    args = p.parse_args(argv)
    bad = 0
    for name, text in plans(args.parquet_dir).items():
        path = RESULTS / f"plan-{name}.txt"
        path.write_text(text)
        python = [line.strip()[:100] for line in text.splitlines() if PYTHON_NODES.search(line.split("[")[0])]
        bad += len(python)
        print(f"[plans] {path}: {len(text.splitlines())} lines, Python nodes: {python or 'none'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

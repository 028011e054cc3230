"""B2: Spark's Kafka read throughput (Structured Streaming, no-op sink) vs Kafka's
ConsumerPerformance, on the same topic (4 partitions, records of our event size)."""

from __future__ import annotations

import json
import re
import subprocess

from bench.common import REPO, Figure, run_java, settings, tag


def fill(topic: str, n: int, size: int) -> None:
    from bench.b1_ingest import tool

    tool(settings().kafka_bootstrap, topic, n, size)


def consumer_performance(topic: str, n: int) -> float:
    s = settings()
    out = run_java("org.apache.kafka.tools.ConsumerPerformance",
                   ["--bootstrap-server", s.kafka_bootstrap, "--topic", topic, "--messages", str(n),
                    "--group", f"bench-{tag()}", "--timeout", "120000"], ("kafka",), heap="1g")  # fmt: skip
    lines = [line for line in out.splitlines() if re.match(r"^\d{4}-\d{2}-\d{2}", line)]
    if not lines:
        raise RuntimeError(f"unexpected ConsumerPerformance output:\n{out[-1500:]}")
    fields = [f.strip() for f in lines[-1].split(",")]
    return float(fields[5])  # nMsg.sec


def spark_read(topic: str, cores: int) -> float:
    from tormenta.spark_conf import default_conf
    from tormenta.stack.services import python_env

    s = settings()
    import sys
    from pathlib import Path

    from tormenta import jvm

    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", f"local[{cores}]"]
    for k, v in default_conf().items():
        cmd += ["--conf", f"{k}={v}"]
    cmd += ["--jars", ",".join(str(p) for p in jvm.spark_jar_paths()), str(REPO / "bench" / "spark_read_job.py"),
            s.kafka_bootstrap, topic, str(s.home / "bench-checkpoints" / f"b2-{tag()}")]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=python_env(), timeout=900)
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"spark read failed:\n{res.stdout[-1000:]}\n{res.stderr[-2000:]}")
    return json.loads(lines[-1])["rows_per_s"]


def run(runs: int, n: int, cores: int = 2) -> list[Figure]:
    from tormenta.kafka import TopicSpec, ensure_topics

    s = settings()
    f_spark = Figure("B2", f"Spark Kafka read, no-op sink (local[{cores}])", "records/s")
    f_tool = Figure("B2", "Kafka ConsumerPerformance (1 thread)", "records/s")
    ratio = Figure("B2", "Spark read / ConsumerPerformance", "ratio")
    for i in range(runs):
        topic = f"bench.b2.{tag()}"
        ensure_topics(s.kafka_bootstrap, [TopicSpec(topic, 4)])
        fill(topic, n, 420)
        sp = spark_read(topic, cores)
        cp = consumer_performance(topic, n)
        f_spark.values.append(round(sp, 1))
        f_tool.values.append(round(cp, 1))
        ratio.values.append(round(sp / cp, 3))
        print(f"  B2 run {i + 1}: spark {sp:,.0f}/s, ConsumerPerformance {cp:,.0f}/s", flush=True)
    for f in (f_spark, f_tool):
        f.note = f"{n:,} records of 420 bytes, 4 partitions"
    return [f_spark, f_tool, ratio]

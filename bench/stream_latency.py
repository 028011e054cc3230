"""Sustained throughput and end-to-end latency of the micro-batch pipeline (social comments).

    .venv/bin/python bench/stream_latency.py --rate 2000 --seconds 60 --interval "1 second" --runs 3

Each run uses fresh topics, a fresh HBase namespace and a fresh checkpoint: it starts the
streaming job, lets one social ingestor produce at ``--rate`` events/s for ``--seconds``, waits
until every acknowledged event is stored, then measures, from HBase itself:
  * sustained rate = events stored / (last batch written - first batch started)
  * per-record latency = write time of the event's micro-batch - event time (p50, p99), in
    steady state: the batches of the first --warmup seconds (10) are left out
  * batches that overran the interval (steady state)
Prints a table and writes bench/results/stream_latency.json. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import stop_group  # noqa: E402
from tormenta import metrics, stack  # noqa: E402
from tormenta.contracts import table_name  # noqa: E402
from tormenta.hbase import HBaseEndpoint  # noqa: E402
from tormenta.intervals import parse_interval  # noqa: E402
from tormenta.kafka import TopicSpec, ensure_topics  # noqa: E402
from tormenta.reference import seed  # noqa: E402
from tormenta.schema import drop_namespace  # noqa: E402
from tormenta.settings import load  # noqa: E402
from tormenta.spark_conf import spark_submit_command  # noqa: E402
from tormenta.stack.services import python_env  # noqa: E402


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def one_run(args, s) -> dict:
    tag = uuid.uuid4().hex[:8]
    ns, topic = f"b{tag}", f"bench.social.{tag}"
    ensure_topics(s.kafka_bootstrap, [TopicSpec(topic, 4), TopicSpec(f"bench.geo.{tag}", 4)])
    conn = HBaseEndpoint(s.bind_host, s.thrift_port).connect()
    seed(conn, device_count=10, namespace=ns)
    job = spark_submit_command("streaming", [
        "--bootstrap", s.kafka_bootstrap, "--interval", args.interval, "--max-offsets-per-trigger",
        str(args.max_offsets), "--checkpoint-root", str(s.home / "bench-checkpoints" / tag),
        "--namespace", ns, "--topic-map", f"social.comment={topic},geo.position=bench.geo.{tag}",
        "--starting-offsets", "earliest", "--hbase-host", s.bind_host, "--hbase-port", str(s.thrift_port),
    ], master=f"local[{args.cores}]")  # fmt: skip
    spark = subprocess.Popen(job, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=python_env(), start_new_session=True)  # fmt: skip
    try:
        time.sleep(15)  # JVM + first (empty) batches
        pages = ",".join(f"pol-{i:02d}" for i in range(10))
        ing = subprocess.run(
            [sys.executable, "-m", "ingestors.runner", "social", "--bootstrap", s.kafka_bootstrap, "--pages", pages,
             "--rate", str(args.rate / 10), "--duration", str(args.seconds), "--name", f"bench-{tag}",
             "--topic", topic],
            capture_output=True, text=True, env=python_env(), cwd=REPO,
        )  # fmt: skip
        report = json.loads(ing.stdout.strip().splitlines()[-1])
        deadline = time.monotonic() + args.seconds * 5 + 120
        while True:
            # a fresh connection each time: the Thrift server drops connections idle for 60 s
            conn.close()
            conn = HBaseEndpoint(s.bind_host, s.thrift_port).connect()
            metrics_tbl = conn.table(table_name(metrics.TABLE, ns))
            results = [json.loads(c[b"d:result"]) for _, c in metrics_tbl.scan() if b"d:result" in c]
            stored = sum(r["good"] for r in results)
            if stored >= report["acked"] or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        stop_group(spark)
    written = {r["label"]: r["written_at"] for r in results}
    busy = sorted((r for r in results if r["read"]), key=lambda r: r["started_at"])
    # Warm-up: Spark's Python workers, imports and first connections make the batches of the
    # first seconds slow; steady-state figures leave them out (they are reported separately).
    warm_until = busy[0]["started_at"] + args.warmup * 1000 if busy else 0
    steady_labels = {r["label"] for r in busy if r["started_at"] >= warm_until}
    lat, steady_lat = [], []
    for _, c in conn.table(table_name("social_comments", ns)).scan(columns=[b"d:event_time", b"d:batch"]):
        label = c[b"d:batch"].decode()
        lat.append(written[label] - int(c[b"d:event_time"]))
        if label in steady_labels:
            steady_lat.append(lat[-1])
    steady = [r for r in busy if r["label"] in steady_labels]
    span_s = (max(r["written_at"] for r in busy) - min(r["started_at"] for r in busy)) / 1000
    interval_ms = 1000 * parse_interval(args.interval)
    durations = [r["written_at"] - r["started_at"] for r in steady] or [0]
    over = sum(1 for d in durations if d > interval_ms)
    drop_namespace(conn, ns)
    conn.close()
    return {
        "acked": report["acked"], "stored": len(lat), "batches": len(steady), "batches_over_interval": over,
        "sustained_eps": len(lat) / span_s if span_s else 0.0,
        "latency_p50_ms": pct(steady_lat or lat, 50), "latency_p99_ms": pct(steady_lat or lat, 99),
        "latency_max_ms": max(lat), "warmup_latency_p99_ms": pct(lat, 99),
        "mean_batch_rows": statistics.mean(r["read"] for r in busy),
        "batch_ms_p50": pct(durations, 50), "batch_ms_min": min(durations),
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=2000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--interval", default="1 second")
    p.add_argument("--max-offsets", type=int, default=200_000)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=float, default=10, help="seconds of first batches left out of steady-state figures")
    args = p.parse_args()
    stack.up()
    s = load()
    runs = [one_run(args, s) for _ in range(args.runs)]
    keys = ["sustained_eps", "latency_p50_ms", "latency_p99_ms", "batches_over_interval", "mean_batch_rows"]
    print(f"\nmicro-batch pipeline, social comments, interval {args.interval}, offered {args.rate:.0f} ev/s, "
          f"{args.seconds:.0f} s, {args.runs} runs (median [min, max])")  # fmt: skip
    summary = {}
    for k in keys:
        vals = [r[k] for r in runs]
        summary[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
        print(f"  {k:<24} {statistics.median(vals):>10.1f}   [{min(vals):.1f}, {max(vals):.1f}]")
    lost = [r for r in runs if r["stored"] != r["acked"]]
    print("  every acknowledged event stored once:", "yes" if not lost else f"NO {lost}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "stream_latency.json").write_text(json.dumps({"args": vars(args), "runs": runs, "summary": summary},
                                                        indent=2))  # fmt: skip
    return 0 if not lost else 1


if __name__ == "__main__":
    sys.exit(main())

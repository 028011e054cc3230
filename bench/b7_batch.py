"""B7: batch job throughput on a big file, and Airflow trigger -> first task start latency.

The file is written by the same source client as the batch DAG's ``source = file`` mode; the two
Spark steps (land: raw -> Parquet in parts; process: the shared business rules -> HBase) run as
the DAG runs them. Throughput = events / (land + process seconds, timed inside the jobs).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time

from bench.common import Figure, Stopwatch, settings, tag


def spark(step_args: list[str], cores: int) -> dict:
    from tormenta.spark_conf import spark_submit_command
    from tormenta.stack.services import python_env

    cmd = spark_submit_command("batch", step_args, master=f"local[{cores}]")
    res = subprocess.run(cmd, capture_output=True, text=True, env=python_env(), timeout=7200)
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"batch step failed:\n{res.stdout[-1000:]}\n{res.stderr[-2000:]}")
    return json.loads(lines[-1])


def trigger_latency() -> float:
    """Seconds from a REST trigger to the first task's start (stop DAG, no pipeline running)."""
    from tormenta.airflow_api import local_client

    c = local_client()
    c.set_paused("tormenta_microbatch_stop", False)
    t0 = time.time()
    run = c.trigger("tormenta_microbatch_stop", conf={"namespace": f"nopipe{tag()}"})
    c.wait_for_run("tormenta_microbatch_stop", run["dag_run_id"], timeout=300)
    first = min(dt.datetime.fromisoformat(t["start_date"]).timestamp()
                for t in c.task_instances("tormenta_microbatch_stop", run["dag_run_id"]) if t["start_date"])  # fmt: skip
    return first - t0


def run(runs: int, events: int, cores: int = 2) -> list[Figure]:
    from kinds.social.source import write_window_file
    from tormenta.batch import resolve_window

    s = settings()
    f_gen = Figure("B7", "source client writing the big file", "events/s")
    f_land = Figure("B7", f"batch land (raw -> Parquet), local[{cores}]", "events/s")
    f_proc = Figure("B7", f"batch process (rules -> HBase), local[{cores}]", "events/s")
    f_all = Figure("B7", "batch end to end (land + process)", "events/s", target=">= 150,000")
    f_trig = Figure("B7", "Airflow trigger -> first task start", "s")
    for i in range(runs):
        t = tag()
        w = resolve_window("2026-01-01T00:00Z", "2026-01-02T00:00Z", dt.datetime.now(dt.UTC))
        base = s.home / "bench" / f"b7-{t}"
        src = base / "events.jsonl"
        with Stopwatch() as sw:
            write_window_file(str(src), w, events, "tormenta")
        land = spark(["land", "--source", "file", "--file", str(src), "--start-ms", str(w.start_ms),
                      "--end-ms", str(w.end_ms), "--raw-dir", str(base / "raw"), "--parquet-dir",
                      str(base / "parquet"), "--parts", str(cores * 2)], cores)  # fmt: skip
        proc = spark(["process", "--parquet-dir", str(base / "parquet"), "--namespace", f"b7{t}",
                      "--source-namespace", "tormenta", "--label", w.label, "--seq", str(w.seq),
                      "--parts", str(cores * 2), "--hbase-host", s.bind_host, "--hbase-port", str(s.thrift_port)],
                     cores)  # fmt: skip
        from tormenta.hbase import HBaseEndpoint
        from tormenta.schema import drop_namespace

        conn = HBaseEndpoint(s.bind_host, s.thrift_port).connect()
        drop_namespace(conn, f"b7{t}")
        conn.close()
        f_gen.values.append(round(events / sw.seconds, 1))
        f_land.values.append(round(events / land["seconds"], 1))
        f_proc.values.append(round(events / proc["seconds"], 1))
        f_all.values.append(round(events / (land["seconds"] + proc["seconds"]), 1))
        f_trig.values.append(round(trigger_latency(), 2))
        print(f"  B7 run {i + 1}: land {land['seconds']:.1f}s, process {proc['seconds']:.1f}s for {events:,} events "
              f"(good {proc['good']:,}); trigger->task {f_trig.values[-1]} s", flush=True)  # fmt: skip
    for f in (f_gen, f_land, f_proc, f_all):
        f.note = f"{events:,} social comments in one file"
    return [f_gen, f_land, f_proc, f_all, f_trig]

"""B4: end-to-end latency (event time -> HBase write) p50/p99 at 1 s, 5 s and 30 s intervals,
and the fixed cost of a micro-batch (a batch of a single event at 1 event/s).

Each run starts the streaming job on fresh topics/tables (``bench/stream_latency.py``), offers
``--b4-rate`` events/s for ``--b4-seconds`` and reads latencies back from HBase; the batches of
the first ``--b4-warmup`` seconds are left out of the steady-state figures. A fresh driver's
first batches are slow (the JIT is cold and Spark generates and compiles ~100 classes per plan),
so the warm-up must be long enough for the backlog they leave to drain.
"""

from __future__ import annotations

from types import SimpleNamespace

from bench.common import Figure, settings


def run(runs: int, rate: float, seconds: float, warmup: float = 60) -> list[Figure]:
    from bench.stream_latency import one_run

    s = settings()
    figures: list[Figure] = []
    for interval in ("1 second", "5 seconds", "30 seconds"):
        secs = max(seconds, warmup + 4 * float(interval.split()[0]))
        p50 = Figure("B4", f"latency p50 at {interval}, {rate:g} ev/s offered", "ms",
                     target="<= 1000 at 1 s" if interval == "1 second" else "")  # fmt: skip
        p99 = Figure("B4", f"latency p99 at {interval}, {rate:g} ev/s offered", "ms",
                     target="<= 2000 at 1 s" if interval == "1 second" else "")  # fmt: skip
        over = Figure("B4", f"batches over the interval at {interval}", "batches")
        for i in range(runs):
            r = one_run(SimpleNamespace(rate=rate, seconds=secs, interval=interval, max_offsets=500_000, cores=2,
                                        warmup=warmup), s)  # fmt: skip
            p50.values.append(r["latency_p50_ms"])
            p99.values.append(r["latency_p99_ms"])
            over.values.append(r["batches_over_interval"])
            print(f"  B4 {interval} run {i + 1}: p50 {r['latency_p50_ms']:,} ms, p99 {r['latency_p99_ms']:,} ms, "
                  f"{r['sustained_eps']:,.0f} ev/s, {r['batches_over_interval']}/{r['batches']} over", flush=True)  # fmt: skip
        figures += [p50, p99, over]
    fixed = Figure("B4", "fixed cost of a micro-batch (1-event batches, median duration)", "ms")
    for i in range(runs):
        r = one_run(SimpleNamespace(rate=1, seconds=warmup + 25, interval="1 second", max_offsets=1000, cores=2,
                                    warmup=warmup), s)  # fmt: skip
        fixed.values.append(r["batch_ms_p50"])
        print(f"  B4 fixed cost run {i + 1}: {r['batch_ms_p50']} ms per batch of ~{r['mean_batch_rows']:.1f} rows",
              flush=True)  # fmt: skip
    figures.append(fixed)
    return figures

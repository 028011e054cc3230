"""B5: maximum sustainable rate of the micro-batch pipeline (enrichment + HBase writes) at a 1 s
interval: offered rates rise in steps; a rate is sustained when, after the warm-up, every batch
finished within the interval and every acknowledged event was stored. The issue asks for 5
minutes per step; ``--b5-seconds`` sets it (the figure says what was used)."""

from __future__ import annotations

from types import SimpleNamespace

from bench.common import Figure, settings


def run(runs: int, start: float, step: float, seconds: float, top: float = 60_000) -> list[Figure]:
    from bench.stream_latency import one_run

    s = settings()
    best = Figure("B5", f"max sustainable rate at 1 s ({seconds:g} s per step, {step:g} ev/s steps)", "events/s",
                  target=">= 50,000")  # fmt: skip
    for i in range(runs):
        rate, ok_rate = start, 0.0
        while rate <= top:
            r = one_run(SimpleNamespace(rate=rate, seconds=seconds, interval="1 second", max_offsets=500_000,
                                        cores=2, warmup=10), s)  # fmt: skip
            ok = r["batches_over_interval"] == 0 and r["stored"] == r["acked"] and r["batches"] > 0
            print(f"  B5 run {i + 1}: {rate:,.0f} ev/s offered -> {r['sustained_eps']:,.0f} stored/s, "
                  f"{r['batches_over_interval']}/{r['batches']} batches over 1 s: {'sustained' if ok else 'not'}",
                  flush=True)  # fmt: skip
            if not ok:
                break
            ok_rate = rate
            rate += step
        best.values.append(ok_rate)
    return [best]

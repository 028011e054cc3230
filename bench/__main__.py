"""Tormenta benchmarks on the local stack: ``make bench`` (not part of ``make test``).

    .venv/bin/python -m bench                      # every benchmark, 3 runs each
    .venv/bin/python -m bench --only B1,B3 --runs 5

Prints a table (median [min, max] of the runs), writes ``bench/results/latest.json`` and
``bench/results/latest.svg``. Every ratio is measured within one run, both sides back to back.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from html import escape

from bench.common import RESULTS, Figure, fmt, machine, write_results

BENCHES = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9")


def run_bench(name: str, args) -> list[Figure]:
    if name == "B1":
        from bench import b1_ingest

        return b1_ingest.run(args.runs, args.b1_records)
    if name == "B2":
        from bench import b2_spark_read

        return b2_spark_read.run(args.runs, args.b2_records)
    if name == "B3":
        from bench import b3_hbase

        return b3_hbase.run(args.runs, args.b3_rows)
    if name == "B4":
        from bench import b4_latency

        return b4_latency.run(args.runs, args.b4_rate, args.b4_seconds, args.b4_warmup)
    if name == "B5":
        from bench import b5_max_rate

        return b5_max_rate.run(args.runs, args.b5_start, args.b5_step, args.b5_seconds)
    if name == "B6":
        from bench import b6_per_event

        return b6_per_event.run(args.runs, args.b6_events)
    if name == "B7":
        from bench import b7_batch

        return b7_batch.run(args.runs, args.b7_events)
    if name == "B8":
        from bench import b8_ui

        return b8_ui.run(args.runs, args.b8_runs, args.b8_events, args.b8_samples)
    if name == "B9":
        from bench import b9_lanes

        return b9_lanes.run(args.runs, args.b9_probes)
    raise ValueError(name)


def table(figures: list[Figure]) -> str:
    lines = [f"{'bench':<5} {'what':<62} {'median':>12} {'[min, max]':>24}  {'unit':<9} target"]
    for f in figures:
        rng = f"[{fmt(min(f.values))}, {fmt(max(f.values))}]" if f.values else "-"
        lines.append(f"{f.bench:<5} {f.name[:62]:<62} {fmt(f.median):>12} {rng:>24}  {f.unit:<9} {f.target}")
    return "\n".join(lines)


def chart(figures: list[Figure], title: str) -> str:
    """One horizontal bar per figure (median, whisker min-max), scaled within its benchmark+unit."""
    rows = [f for f in figures if f.values]
    width, left, row = 900, 420, 22
    height = 40 + row * len(rows) + 20
    scale: dict[tuple[str, str], float] = {}
    for f in rows:
        key = (f.bench, f.unit)
        scale[key] = max(scale.get(key, 0), max(f.values))
    body = [f'<text x="10" y="20" font-family="system-ui" font-size="14" font-weight="600">{escape(title)}</text>']
    y = 36
    for f in rows:
        s = (width - left - 140) / (scale[(f.bench, f.unit)] or 1)
        w = f.median * s
        body.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-family="system-ui" font-size="11">'
                    f"{escape(f.bench + ' ' + f.name[:58])}</text>")  # fmt: skip
        body.append(f'<rect x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" fill="#0b7285"/>')
        body.append(f'<line x1="{left + min(f.values) * s:.1f}" x2="{left + max(f.values) * s:.1f}" y1="{y + 9}" '
                    f'y2="{y + 9}" stroke="#222"/>')  # fmt: skip
        body.append(f'<text x="{left + max(f.values) * s + 6:.1f}" y="{y + 14}" font-family="system-ui" font-size="11">'
                    f"{escape(fmt(f.median))} {escape(f.unit)}</text>")  # fmt: skip
        y += row
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<rect width="100%" height="100%" fill="#fff"/>{"".join(body)}</svg>')  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {', '.join(BENCHES)}")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--b1-records", type=int, default=300_000)
    p.add_argument("--b2-records", type=int, default=1_000_000)
    p.add_argument("--b3-rows", type=int, default=100_000)
    p.add_argument("--b4-rate", type=float, default=500, help="offered events/s for the latency runs")
    p.add_argument("--b4-seconds", type=float, default=120)
    p.add_argument("--b4-warmup", type=float, default=60,
                   help="seconds of first batches left out (JIT, code generation, first connections)")
    p.add_argument("--b5-start", type=float, default=2000)
    p.add_argument("--b5-step", type=float, default=1000)
    p.add_argument("--b5-seconds", type=float, default=300, help="per step (the issue's 5 minutes)")
    p.add_argument("--b6-events", type=int, default=20_000)
    p.add_argument("--b7-events", type=int, default=200_000)
    p.add_argument("--b8-runs", type=int, default=1_000, help="runs of each pipeline in the UI bench's history")
    p.add_argument("--b8-events", type=int, default=1_000_000, help="stored events in the UI bench's namespace")
    p.add_argument("--b8-samples", type=int, default=40, help="views timed per run")
    p.add_argument("--b9-probes", type=int, default=30, help="positions timed one at a time per lane and run")
    args = p.parse_args(argv)
    chosen = [b.strip().upper() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(BENCHES))
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}")
    from tormenta import stack

    print("[bench] making sure the local stack is up", flush=True)
    stack.up()
    figures: list[Figure] = []
    done: list[str] = []
    started = time.time()
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for name in chosen:
        print(f"[bench] {name} ({args.runs} runs)", flush=True)
        t0 = time.monotonic()
        try:
            figures += run_bench(name, args)
        except Exception as exc:  # keep what the other benchmarks measured
            print(f"[bench] {name} FAILED: {exc!r}", flush=True)
            continue
        done.append(name)
        print(f"[bench] {name} done in {time.monotonic() - t0:.0f}s", flush=True)
        save(args, chosen, figures, done, when, started)  # a stopped run keeps what it finished
    print()
    print(table(figures))
    path = save(args, chosen, figures, done, when, started)
    print(f"\n[bench] {path} and {RESULTS / 'latest.svg'}")
    return 0 if done == chosen else 1


def save(args, chosen: list[str], figures: list[Figure], done: list[str], when: str, started: float):
    """This invocation's file, and latest.json / latest.svg with the newest figures of every
    benchmark (a subset run replaces only the benchmarks it finished)."""
    doc = {
        "when": when,
        "machine": machine(),
        "args": vars(args),
        "seconds": round(time.time() - started),
        "figures": [f.as_dict() for f in figures],
    }
    write_results(f"bench-{'-'.join(chosen)}-{when[:19].replace(':', '')}", doc)
    latest_path = RESULTS / "latest.json"
    latest = json.loads(latest_path.read_text()) if latest_path.exists() else {"figures": [], "runs": {}}
    kept = [f for f in latest["figures"] if f["bench"] not in done]
    latest = {"figures": kept + doc["figures"], "machine": doc["machine"],
              "runs": {**latest.get("runs", {}), **{b: when for b in done}}}  # fmt: skip
    latest["figures"].sort(key=lambda f: f["bench"])
    path = write_results("latest", latest)
    all_figures = [Figure(**{k: f[k] for k in ("bench", "name", "unit", "values", "target", "note")})
                   for f in latest["figures"]]  # fmt: skip
    m = doc["machine"]
    svg = RESULTS / "latest.svg"
    svg.write_text(chart(all_figures, f"Tormenta bench on {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB"))
    return path


if __name__ == "__main__":
    sys.exit(main())

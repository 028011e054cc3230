"""Batch vs micro-batch: the numbers of one run of each, side by side (used by the plugin page).

Everything is read from HBase, where the runs left it:

* micro-batch run: its batches under ``run|<run id>|`` in ``<ns>_microbatch_metrics``;
* batch run: its record in ``<ns>_batch_runs``;
* both: CPU-seconds and peak memory per component in ``<ns>_run_resources``;
* agreement: the batch window's aggregates against the micro-batch ones for the same minutes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tormenta import latency, metrics, resources
from tormenta.batch import RESULTS_NAMESPACE, compare_social, run_index_key
from tormenta.contracts import DEFAULT_NAMESPACE, table_name
from tormenta.control import run_storms
from tormenta.intervals import DEFAULT_INTERVAL, parse_interval

MAX_BATCHES = 50_000  # a day at 2 s; older batches of a longer run are not read
MAX_POINTS = 400  # freshness points drawn per run


@dataclass(frozen=True)
class RunInfo:
    dag_id: str
    run_id: str
    state: str
    start_ms: int | None
    end_ms: int | None
    conf: dict[str, Any]


def _percentiles(hist: list[int]) -> dict[str, float | None]:
    return {f"p{p}": latency.percentile(hist, p) for p in (50, 95, 99)}


def _merge_counts(dicts: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in (d or {}).items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


def merge_expectations(per_batch: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Expectation counts of several batches: the records each did not meet, summed."""
    out: dict[str, dict[str, Any]] = {}
    for doc in per_batch:
        for name, e in doc.items():
            acc = out.setdefault(name, {"action": e["action"], "failed": 0})
            acc["failed"] += e["failed"]
    return dict(sorted(out.items()))


def _downsample(points: list[tuple[int, float]], n: int = MAX_POINTS) -> list[tuple[int, float]]:
    if len(points) <= n:
        return points
    step = len(points) / n
    return [points[int(i * step)] for i in range(n)] + [points[-1]]


def component_usage(conn, namespace: str, run: RunInfo) -> dict[str, dict[str, float]]:
    """ingestors / spark / HBase writes: CPU-seconds and peak memory of the run's processes."""
    raw = resources.load(conn, namespace, run.dag_id, run.run_id)
    out: dict[str, dict[str, float]] = {}

    def add(name: str, cpu: float, mem: float, peak_sum: bool = False) -> None:
        acc = out.setdefault(name, {"cpu_seconds": 0.0, "peak_rss_mb": 0.0})
        acc["cpu_seconds"] = round(acc["cpu_seconds"] + cpu, 2)
        # ingestors run side by side: their peaks add up; tries of one component do not
        acc["peak_rss_mb"] = round(acc["peak_rss_mb"] + mem if peak_sum else max(acc["peak_rss_mb"], mem), 1)

    for comp, u in sorted(raw.items()):
        if comp.startswith("ingestor:"):
            add("ingestors", u["cpu_seconds"], u["peak_rss_mb"], peak_sum=True)
        elif comp.startswith("spark:"):
            add("spark", u["cpu_seconds"], u["peak_rss_mb"], peak_sum=True)
        services = u.get("services_cpu_seconds") or {}
        if services:
            add("hbase writes", sum(services.values()), u.get("services_peak_rss_mb", 0.0))
    return out


# The run the page opens with when none is chosen: the newest one that has numbers to show.
DEFAULT_STATES = {"micro-batch": ("running", "success"), "batch": ("success",)}


def default_run(runs: list[dict[str, Any]], mode: str) -> dict[str, Any] | None:
    """The newest of ``runs`` (newest first) in one of the mode's :data:`DEFAULT_STATES`, else the
    newest: a failed or still-running batch run has no record to compare yet."""
    return next((r for r in runs if r["state"] in DEFAULT_STATES[mode]), None) or next(iter(runs), None)


def _namespace(run: RunInfo, mode: str) -> str:
    return run.conf.get("namespace", DEFAULT_NAMESPACE if mode == "micro-batch" else RESULTS_NAMESPACE)


def _gone(run: RunInfo, mode: str, needed: tuple[str, ...], tables: set[bytes]) -> dict[str, Any] | None:
    """The page's numbers for a run whose namespace's tables are gone (dropped since), None if they exist."""
    ns = _namespace(run, mode)
    missing = [t for t in needed if table_name(t, ns).encode() not in tables]
    if not missing:
        return None
    return {"mode": mode, "dag_id": run.dag_id, "run_id": run.run_id, "state": run.state, "namespace": ns,
            "interval": None, "window": None, "start_ms": run.start_ms, "end_ms": run.end_ms, "read": 0, "good": 0,
            "dead": 0, "dead_by_reason": {}, "latency_hist": [], "latency_ms": {}, "freshness": [], "resources": {},
            "throughput_eps": None,
            "missing": f"the {mode} run's tables are gone ({', '.join(table_name(t, ns) for t in missing)}): "
                       "its namespace was dropped since it ran"}  # fmt: skip


def recovery(results: list[dict[str, Any]], storm: dict[str, Any], interval_s: float) -> dict[str, Any]:
    """How the run came through a storm, from its batches (oldest first): the highest batch p50
    latency during the storm and after it, and the seconds from the storm's end until a batch's
    p50 latency was back under twice the interval (None: not yet)."""
    bound = 2 * interval_s * 1000
    during = [r for r in results if storm["from_ms"] <= r["written_at"]]
    after = [r for r in during if r["written_at"] >= storm["until_ms"]]
    back = next((r for r in after if (r.get("latency_ms") or {}).get("p50") is not None
                 and r["latency_ms"]["p50"] < bound), None)  # fmt: skip
    return {
        **storm,
        "peak_p50_ms": max(((r.get("latency_ms") or {}).get("p50") or 0 for r in during), default=None),
        "max_records_per_batch": max((r["read"] for r in during), default=None),
        "recovered_s": round((back["written_at"] - storm["until_ms"]) / 1000, 1) if back else None,
        "bound_ms": bound,
    }


def microbatch_stats(conn, run: RunInfo) -> dict[str, Any]:
    ns = _namespace(run, "micro-batch")
    results = metrics.run_results(conn, ns, run.run_id, limit=MAX_BATCHES)
    hist = latency.merge(r.get("latency_hist") or [] for r in results)
    good = sum(r["good"] for r in results)
    first = min((r["started_at"] for r in results), default=None)
    last = max((r["written_at"] for r in results), default=None)
    freshness = [(r["written_at"], (r["written_at"] - r["max_event_time"]) / 1000) for r in results if r.get("max_event_time")]
    busy_s = sum((r["written_at"] - r["started_at"]) / 1000 for r in results)
    span_s = ((last or 0) - (run.start_ms or first or 0)) / 1000 if last else 0
    return {
        "mode": "micro-batch",
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state,
        "namespace": ns,
        "interval": run.conf.get("interval", DEFAULT_INTERVAL),
        "window": None,
        "start_ms": run.start_ms,
        "end_ms": run.end_ms,
        "batches": len(results),
        "batches_with_records": sum(1 for r in results if r["read"]),
        "read": sum(r["read"] for r in results),
        "good": good,
        "dead": sum(r["dead"] for r in results),
        "dead_by_reason": _merge_counts([r.get("dead_by_reason", {}) for r in results]),
        "expectations": merge_expectations([r.get("expectations") or {} for r in results]),
        "throughput_eps": round(good / span_s, 1) if span_s > 0 else None,
        "busy_fraction": round(busy_s / span_s, 3) if span_s > 0 else None,
        "latency_hist": hist,
        "latency_ms": _percentiles(hist),
        "freshness": _downsample(sorted(freshness)),
        "resources": component_usage(conn, ns, run),
        "storms": [recovery(results, storm, parse_interval(run.conf.get("interval", DEFAULT_INTERVAL)))
                   for storm in run_storms(conn, ns, run.run_id)],  # fmt: skip
        "truncated": len(results) >= MAX_BATCHES,
    }


def batch_stats(conn, run: RunInfo) -> dict[str, Any]:
    ns = _namespace(run, "batch")
    table_ = table_name("batch_runs", ns)
    record = check = None
    if table_.encode() in conn.tables():
        # one get of the run's index row; a table written before there were index rows: a scan
        cells = conn.table(table_).row(run_index_key(run.run_id), columns=[b"d:doc", b"d:agree"])
        if b"d:doc" not in cells and not list(conn.table(table_).scan(row_prefix=b"run|", limit=1)):
            cells = next((c for key, c in conn.table(table_).scan(columns=[b"d:doc", b"d:agree"])
                          if key.decode().split("|", 1)[1] == run.run_id and b"d:doc" in c), {})  # fmt: skip
        if b"d:doc" in cells:
            record = json.loads(cells[b"d:doc"])
            check = json.loads(cells[b"d:agree"]) if b"d:agree" in cells else None
    base = {"mode": "batch", "dag_id": run.dag_id, "run_id": run.run_id, "state": run.state, "namespace": ns,
            "start_ms": run.start_ms, "end_ms": run.end_ms, "interval": None}  # fmt: skip
    if record is None:
        return {**base, "window": None, "read": 0, "good": 0, "dead": 0, "dead_by_reason": {}, "latency_hist": [],
                "latency_ms": {}, "freshness": [], "resources": component_usage(conn, ns, run),
                "throughput_eps": None, "missing": "no run record yet (the run has not reached its record task)"}  # fmt: skip
    hist = record.get("latency_hist") or []
    seconds = record.get("process_seconds") or 0
    written = record.get("process_written_at")
    freshness = [(written, (written - record["max_event_time"]) / 1000)] if written and record.get("max_event_time") else []
    return {
        **base,
        "window": record["window"],
        "source_namespace": run.conf.get("source_namespace", DEFAULT_NAMESPACE),
        "parts": record.get("parts"),
        "read": record.get("read") or 0,
        "good": record.get("good") or 0,
        "dead": record.get("dead") or 0,
        "dead_by_reason": record.get("dead_by_reason") or {},
        "expectations": record.get("expectations") or {},
        "throughput_eps": round((record.get("good") or 0) / seconds, 1) if seconds else None,
        "land_seconds": record.get("land_seconds"),
        "process_seconds": seconds,
        "latency_hist": hist,
        "latency_ms": {k: record.get("latency_ms", {}).get(k) for k in ("p50", "p95", "p99")} if record.get("latency_ms")
        else _percentiles(hist),
        "freshness": freshness,
        "resources": component_usage(conn, ns, run),
        "agree_check": check,  # the run's agree task result (tormenta.agreement), None before it ran
    }  # fmt: skip


def overlaps(run_start: int | None, run_end: int | None, start_ms: int, end_ms: int) -> bool:
    """Did a run (``run_end`` None: still running; ``run_start`` None: not started) run during [start, end)?"""
    return run_start is not None and run_start < end_ms and (run_end is None or run_end > start_ms)


def agreement(conn, micro: dict[str, Any] | None, batch: dict[str, Any] | None) -> dict[str, Any]:
    """Do both paths agree on the batch window's social aggregates?"""
    if micro and micro.get("missing") or batch and batch.get("missing"):
        return {"status": "n/a", "why": (micro or {}).get("missing") or batch["missing"]}
    if not micro or not batch or not batch.get("window"):
        return {"status": "n/a", "why": "needs a batch run with a window and a micro-batch run"}
    w = batch["window"]
    if not overlaps(micro["start_ms"], micro["end_ms"], w["start_ms"], w["end_ms"]):
        return {"status": "n/a", "why": f"the micro-batch run {micro['run_id']} did not run during the batch window "
                                        f"({w['start']} to {w['end']}): pick runs whose times overlap"}  # fmt: skip
    if batch.get("source_namespace") != micro["namespace"]:
        return {"status": "n/a", "why": f"the batch read namespace {batch.get('source_namespace')!r}, "
                                        f"the micro-batch run wrote {micro['namespace']!r}: not the same events"}  # fmt: skip
    check = batch.get("agree_check")
    if check is not None:  # the batch run's agree task compared every aggregate: its result
        if check.get("agree") is None:
            return {"status": "n/a", "why": f"the agree task: {check.get('why', 'nothing to compare')}"}
        return {"status": "agree" if check["agree"] else "differ", "check": check}
    res = compare_social(conn, micro["namespace"], batch["namespace"], w["start_ms"], w["end_ms"])
    if res["agree"] is None:
        return {"status": "n/a", "why": "no aggregates in the window on either side", **res}
    diffs = res["differences"]
    return {
        "status": "agree" if res["agree"] else "differ",
        "rows": res["rows"],
        "comments": res["comments"],
        "differences": dict(list(diffs.items())[:50]),
        "differences_total": len(diffs),
        "note": "micro-batch sums include every micro-batch that wrote into the window's minutes, "
                "also from runs other than the one selected",
    }  # fmt: skip


PROCESSING = ("spark", "hbase writes")  # the ingestors feed both paths (the batch re-reads Kafka)


def cpu_per_event(stats: dict[str, Any] | None) -> float | None:
    """Processing CPU-seconds (Spark + HBase writes) per stored event, None without figures."""
    if not stats or not stats.get("good") or not stats.get("resources"):
        return None
    cpu = sum(u["cpu_seconds"] for c, u in stats["resources"].items() if c in PROCESSING)
    return cpu / stats["good"] if cpu else None


def _seconds(ms: float) -> str:
    s = ms / 1000
    return f"{s:.1f} s" if s < 120 else (f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h")


def verdict(m: dict[str, Any] | None, b: dict[str, Any] | None, agree: dict[str, Any]) -> dict[str, Any]:
    """What the two runs mean for the choice, in one sentence (and its figures): how much fresher
    the micro-batch path delivered the data, for how much processing CPU per event, and whether
    both computed the same aggregates. Says what is missing instead of guessing."""
    if not m or not b or m.get("missing") or b.get("missing"):
        return {"text": "Pick a micro-batch run and a batch run with figures to get a verdict."}
    parts: list[str] = []
    out: dict[str, Any] = {}
    pm, pb = m["latency_ms"].get("p50"), b["latency_ms"].get("p50")
    if pm and pb:
        out["fresher_x"] = round(pb / pm, 1)
        word = "fresher" if pb >= pm else "staler"
        ratio = pb / pm if pb >= pm else pm / pb
        parts.append(f"micro-batch delivered data {ratio:.3g}x {word} (p50 {_seconds(pm)} vs {_seconds(pb)})")
    else:
        parts.append("no latency figures on " + ("both sides" if not pm and not pb else
                                                 "the micro-batch side" if not pm else "the batch side"))  # fmt: skip
    cm, cb = cpu_per_event(m), cpu_per_event(b)
    if cm and cb:
        out["cpu_x"] = round(cm / cb, 2)
        cost = (f"{cm / cb:.2g}x the processing CPU-seconds per event "
                f"({cm * 1000:.3g} vs {cb * 1000:.3g} per 1,000 events)")  # fmt: skip
        if "fresher_x" in out:
            parts[-1] += f" for {cost}"
        else:
            parts.append(f"micro-batch used {cost}")
    else:
        parts.append("CPU per event unknown (" + ("no figures for " + " or ".join(
            n for n, c in (("micro-batch", cm), ("batch", cb)) if not c)) + ")")  # fmt: skip
    status = agree.get("status")
    if status == "agree":
        parts.append("both computed the same aggregates")
    elif status == "differ":
        n = (agree.get("check") or {}).get("differ", agree.get("differences_total"))
        parts.append(f"their aggregates DIFFER ({n} rows)")
    else:
        parts.append("whether they agree is not known: " + agree.get("why", "n/a"))
    text = "; ".join(parts)
    return {**out, "text": text[0].upper() + text[1:] + "."}


def compare(conn, micro: RunInfo | None, batch: RunInfo | None) -> dict[str, Any]:
    tables = set(conn.tables())
    m = b = None
    if micro:
        m = _gone(micro, "micro-batch", (metrics.TABLE, "social_minute"), tables) or microbatch_stats(conn, micro)
    if batch:
        b = _gone(batch, "batch", ("batch_runs", "social_minute"), tables) or batch_stats(conn, batch)
    agree = agreement(conn, m, b)
    return {"micro_batch": m, "batch": b, "agreement": agree, "verdict": verdict(m, b, agree), "latency_buckets": [
        latency.label(i) for i in range(len(latency.EDGES_MS) + 1)]}  # fmt: skip

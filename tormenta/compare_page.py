"""HTML of the "Batch vs micro-batch" page (server-side SVG charts, no external assets)."""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from tormenta import charts
from tormenta.compare import cpu_per_event

HOW_TO_READ = """
<p><b>How to read this page.</b> Pick one run of each pipeline. <i>Latency</i> is per record, from
the event's own time to the moment its batch was written to HBase: the micro-batch path keeps it
near its interval, the batch path pays for the whole window. <i>Freshness</i> is the age of the
newest stored event each time a batch was written: a saw-tooth close to the interval for the
micro-batch run, one point (hours, for a daily window) for the batch run. <i>CPU-seconds and peak
memory</i> are measured on the processes of each part (ingestors, Spark, HBase region + Thrift
servers during the Spark job): the micro-batch run holds its share for as long as it runs, the
batch run only while the window is processed. <i>Agreement</i> compares the aggregates both paths
wrote for the batch window's minutes, computed by the same business-rule code.</p>
"""

CSS = """
body{font-family:system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px} h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
th{background:#f4f6f8} .num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:16px} .card{border:1px solid #e3e6ea;border-radius:6px;padding:8px}
.agree{color:#2b8a3e;font-weight:600} .differ{color:#c92a2a;font-weight:600} .na{color:#666}
.verdict{font-size:1.15em;font-weight:600;background:#f1f3f5;border-left:4px solid #1c7ed6;padding:8px 12px;margin:8px 0 14px}
form{margin:8px 0;font-size:13px} select{max-width:420px} .muted{color:#666;font-size:12px}
.mb{color:#0b7285;font-weight:600} .b{color:#e8590c;font-weight:600}
"""


def _ts(ms: int | None) -> str:
    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}"
    return f"{v:,}{unit}" if isinstance(v, int) else escape(str(v))


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f} ms" if v < 10_000 else (f"{v / 1000:,.1f} s" if v < 600_000 else f"{v / 3_600_000:,.2f} h")


def _options(runs: list[dict], selected: str | None) -> str:
    out = []
    for r in runs:
        sel = " selected" if r["run_id"] == selected else ""
        label = f"{r['run_id']} [{r['state']}]"
        out.append(f'<option value="{escape(r["run_id"])}"{sel}>{escape(label)}</option>')
    return "".join(out) or '<option value="">(no runs yet)</option>'


def _storm_row(st: dict[str, Any]) -> str:
    back = "not yet" if st["recovered_s"] is None else f"{st['recovered_s']:,.1f} s"
    return (f"<tr><td>{escape(st['page'])} &times;{st['factor']}</td>"
            f"<td>{_ts(st['from_ms'])} &rarr; {_ts(st['until_ms'])}</td>"
            f'<td class="num">{_ms(st["peak_p50_ms"])}</td><td class="num">{_num(st["max_records_per_batch"])}</td>'
            f'<td class="num">{back}</td></tr>')


def _storms_table(rows: str) -> str:
    if not rows:
        return ""
    return ("<h2>Storms on demand (tormenta_storm)</h2><table><tr><th>page</th><th>when</th>"
            "<th>highest batch p50 latency since</th><th>most records in a batch since</th>"
            "<th>back under 2&times; the interval after the storm</th></tr>" + rows + "</table>")


def _no_usage(s: dict[str, Any]) -> str:
    """Why a run has no CPU and memory figures."""
    if s["state"] in ("running", "queued"):
        return (f"no CPU or memory figures yet: each process's are recorded when it ends, and the run is "
                f"{s['state']}")  # fmt: skip
    return "no CPU or memory figures were recorded for this run"


def other_dag(dag_id: str, dag_ids: tuple[str, str], base: str) -> str:
    """The page opened from a run of a DAG it does not compare (Airflow shows its tab on every run)."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Batch vs micro-batch</title>
<style>{CSS}</style></head><body><h1>Batch vs micro-batch</h1>
<p class="na">This page compares runs of {escape(dag_ids[0])} and {escape(dag_ids[1])}; {escape(dag_id)} is
neither, so there is nothing to compare for this run.</p>
<p><a href="{escape(base)}/plugin/batch-vs-micro-batch" target="_top">Compare the newest runs of both pipelines</a></p>
</body></html>"""


def _check_html(check: dict[str, Any]) -> str:
    """The batch run's agree task result: rows compared per aggregate, and the differing ones."""
    head = (f" &mdash; the batch run's agree task compared {check['compared']:,} aggregate rows: "
            f"{check['same']:,} the same, {check['edge']:,} off by the window's edges only "
            f"(events within {check['edge_ms'] / 1000:g} s of an edge, trips that cross one), "
            f"{check.get('history', 0):,} off by events the micro-batch path had stored in an earlier run, "
            f"{check['differ']:,} different</p>")  # fmt: skip
    rows = "".join(f"<tr><th>{escape(t['aggregate'])}</th>" + "".join(
        f'<td class="num">{_num(t.get(k, 0))}</td>' for k in ("compared", "same", "edge", "history", "differ")) + "</tr>"
        for t in check["aggregates"])  # fmt: skip
    table = ("<table><tr><th>aggregate</th><th>rows compared</th><th>same</th><th>edge</th><th>history</th>"
             "<th>differ</th></tr>"
             f"{rows}</table>")  # fmt: skip
    examples = [(t["aggregate"], x) for t in check["aggregates"] for x in t["examples"]]
    if examples:
        table += "<table><tr><th>aggregate</th><th>row</th><th>micro-batch</th><th>batch</th></tr>" + "".join(
            f"<tr><td>{escape(a)}</td><td>{escape(x['row'])}</td><td>{escape(json.dumps(x['micro_batch']))}</td>"
            f"<td>{escape(json.dumps(x['batch']))}</td></tr>" for a, x in examples) + "</table>"  # fmt: skip
    return head + table


def render(data: dict[str, Any], runs: dict[str, list[dict]], base: str, micro_id: str | None,
           batch_id: str | None) -> str:  # fmt: skip
    m, b, agree = data["micro_batch"], data["batch"], data["agreement"]
    cols = [("micro-batch", m), ("batch", b)]

    def row(label: str, fn) -> str:
        cells = "".join(f'<td class="num">{fn(s) if s else "-"}</td>' for _, s in cols)
        return f"<tr><th>{escape(label)}</th>{cells}</tr>"

    def run_link(s):
        return (f'<a target="_top" href="{base}/dags/{quote(s["dag_id"])}/runs/{quote(s["run_id"], safe="")}">'
                f'{escape(s["run_id"])}</a>')  # fmt: skip

    def window(s):
        if s.get("window"):
            return f"{escape(s['window']['start'])} &rarr; {escape(s['window']['end'])}"
        return f"every {escape(str(s['interval']))}" if s.get("interval") else "-"

    summary = "".join([
        "<table><tr><th></th><th class='mb'>micro-batch</th><th class='b'>batch</th></tr>",
        row("run", run_link), row("state", lambda s: escape(s["state"])),
        row("namespace", lambda s: escape(s["namespace"])),
        row("interval / window", window),
        row("start", lambda s: _ts(s["start_ms"])), row("end", lambda s: _ts(s["end_ms"])),
        row("records read", lambda s: _num(s["read"])), row("stored", lambda s: _num(s["good"])),
        row("dead letters", lambda s: _num(s["dead"])),
        row("throughput (stored/s)", lambda s: _num(s.get("throughput_eps"))),
        row("batches", lambda s: _num(s.get("batches", 1 if s.get("window") else None))),
        row("latency p50", lambda s: _ms(s["latency_ms"].get("p50"))),
        row("latency p95", lambda s: _ms(s["latency_ms"].get("p95"))),
        row("latency p99", lambda s: _ms(s["latency_ms"].get("p99"))),
        row("processing CPU-s / 1,000 events", lambda s: f"{c * 1000:.3g}" if (c := cpu_per_event(s)) else "-"),
        "</table>",
    ])  # fmt: skip
    hist = charts.latency_histogram(data["latency_buckets"], {n: s["latency_hist"] for n, s in cols if s})
    storms = (m or {}).get("storms") or []
    fresh = charts.freshness({n: [tuple(p) for p in s["freshness"]] for n, s in cols if s},
                             {n: s["start_ms"] for n, s in cols if s},
                             bands=[("micro-batch", f"storm {st['page']} x{st['factor']}", st["from_ms"], st["until_ms"])
                                    for st in storms])  # fmt: skip
    storm_html = "".join(_storm_row(st) for st in storms)
    cpu = charts.grouped_bars({n: {c: u["cpu_seconds"] for c, u in s["resources"].items()} for n, s in cols if s},
                              "CPU-s", "CPU-seconds per component")  # fmt: skip
    mem = charts.grouped_bars({n: {c: u["peak_rss_mb"] for c, u in s["resources"].items()} for n, s in cols if s},
                              "MiB", "Peak memory per component")  # fmt: skip
    notes = "".join(f'<p class="differ">{escape(s["missing"])}</p>' for _, s in cols if s and s.get("missing"))
    usage = "".join(f'<p class="muted">{escape(name)}: {escape(_no_usage(s))}</p>'
                    for name, s in cols if s and not s["resources"] and not s.get("missing"))  # fmt: skip
    reasons = sorted({r for _, s in cols if s for r in s["dead_by_reason"]})
    dead = "".join(
        f"<tr><th>{escape(r)}</th>" + "".join(f'<td class="num">{_num((s or {}).get("dead_by_reason", {}).get(r, 0))}</td>' for _, s in cols) + "</tr>"
        for r in reasons
    ) or "<tr><td colspan='3' class='na'>no dead letters</td></tr>"  # fmt: skip
    names = sorted({n for _, s in cols if s for n in s.get("expectations") or {}})
    actions = {n: e["action"] for _, s in cols if s for n, e in (s.get("expectations") or {}).items()}
    expectations = "".join(
        f"<tr><th>{escape(n)}</th><td>{escape(actions[n])}</td>" + "".join(
            f'<td class="num">{_num(((s or {}).get("expectations") or {}).get(n, {}).get("failed")) if s else "-"}</td>'
            for _, s in cols) + "</tr>"
        for n in names
    ) or "<tr><td colspan='4' class='na'>no expectation counts in these runs</td></tr>"  # fmt: skip
    status = agree["status"]
    agree_html = f'<p class="{ {"agree": "agree", "differ": "differ"}.get(status, "na") }">{escape(status)}'
    if agree.get("check"):
        agree_html += _check_html(agree["check"])
    elif status in ("agree", "differ"):
        c = agree["comments"]
        agree_html += (f" &mdash; {agree['rows']} (page, minute) rows compared; comments: micro-batch "
                       f"{c['micro_batch']:,}, batch {c['batch']:,}</p>")  # fmt: skip
        if agree.get("differences"):
            agree_html += "<table><tr><th>row</th><th>micro-batch</th><th>batch</th></tr>" + "".join(
                f"<tr><td>{escape(k)}</td><td>{escape(str(v['micro_batch']))}</td><td>{escape(str(v['batch']))}</td></tr>"
                for k, v in agree["differences"].items()) + "</table>"  # fmt: skip
        agree_html += f"<p class='muted'>{escape(agree.get('note', ''))}</p>"
    else:
        agree_html += f" &mdash; {escape(agree.get('why', ''))}</p>"
    api = f"api/compare?{urlencode({k: v for k, v in (('micro', micro_id), ('batch', batch_id)) if v})}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Batch vs micro-batch</title>
<style>{CSS}</style></head><body>
<h1>Batch vs micro-batch</h1>
<form method="get">
<label>micro-batch run <select name="micro">{_options(runs["micro_batch"], micro_id)}</select></label>
<label>batch run <select name="batch">{_options(runs["batch"], batch_id)}</select></label>
<button type="submit">Compare</button> <a class="muted" href="{escape(api)}">JSON</a>
</form>
<p class="verdict">{escape(data.get("verdict", {}).get("text", ""))}</p>
{HOW_TO_READ}
<h2>Runs</h2>{summary}{notes}
<div class="grid">
<div class="card"><h2>Latency per record</h2>{hist}</div>
<div class="card"><h2>Freshness over time</h2>{fresh}</div>
<div class="card"><h2>CPU</h2>{cpu}{usage}</div>
<div class="card"><h2>Memory</h2>{mem}{usage}</div>
</div>
{_storms_table(storm_html)}
<h2>Dead letters by reason</h2><table><tr><th>reason</th><th class="mb">micro-batch</th><th class="b">batch</th></tr>{dead}</table>
<h2>Expectations: records that did not meet them</h2>
<table><tr><th>kind: expectation</th><th>action</th><th class="mb">micro-batch</th><th class="b">batch</th></tr>{expectations}</table>
<p class="muted">warn: kept and counted; drop: a dead letter with reason expectation:&lt;name&gt;; fail: the batch stops.</p>
<h2>Do the results agree?</h2>{agree_html}
</body></html>"""

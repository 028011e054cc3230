"""The live view's HTML (``tormenta.live`` reads the data): a map of the phones and zones per
city, comments per politician per minute, the newest dead letters. Server-drawn SVG, no CDN; a
few lines of JavaScript fetch the fragment again every few seconds (no full page reload)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from html import escape
from typing import Any
from urllib.parse import urlencode

from tormenta.charts import FONT, _svg, empty
from tormenta.compare_page import CSS as PAGE_CSS  # one look for the plugin's pages

CSS = PAGE_CSS + """
.warn{color:#c92a2a} code{font-size:11px;word-break:break-all}
"""

ZONE_FILL = "#e7f5ff"
IN_ZONE, OUT_ZONE = "#1c7ed6", "#868e96"


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%H:%M:%S") if ms else "-"


def city_map(city: str, zones: list[dict], devices: list[dict], width: int = 420, height: int = 340) -> str:
    """One city: its zones (boxes, with the phones in each) and the phones (dots) at their latest position."""
    la0, la1 = min(z["lat_min"] for z in zones), max(z["lat_max"] for z in zones)
    lo0, lo1 = min(z["lon_min"] for z in zones), max(z["lon_max"] for z in zones)
    pad = 12

    def x(lon: float) -> float:
        return pad + (lon - lo0) / (lo1 - lo0) * (width - 2 * pad)

    def y(lat: float) -> float:
        return height - pad - (lat - la0) / (la1 - la0) * (height - 2 * pad)

    inside = [d for d in devices if la0 <= d["lat"] <= la1 and lo0 <= d["lon"] <= lo1]
    per_zone = Counter(d["zone"] for d in inside)
    body = []
    for z in zones:
        x0, x1, y0, y1 = x(z["lon_min"]), x(z["lon_max"]), y(z["lat_max"]), y(z["lat_min"])
        body.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" '
                    f'fill="{ZONE_FILL}" stroke="#74c0fc"><title>{escape(z["zone_id"])}</title></rect>')  # fmt: skip
        body.append(f'<text x="{x0 + 4:.1f}" y="{y0 + 13:.1f}" {FONT} fill="#1864ab">{escape(z["zone_id"])} '
                    f'({per_zone.get(z["zone_id"], 0)})</text>')  # fmt: skip
    for d in inside:
        color = IN_ZONE if d["zone"] else OUT_ZONE
        body.append(f'<circle cx="{x(d["lon"]):.1f}" cy="{y(d["lat"]):.1f}" r="3.5" fill="{color}" class="device">'
                    f'<title>{escape(d["device_id"])} {d["lat"]:.5f},{d["lon"]:.5f} {escape(d["zone"] or "no zone")} '
                    f'{d["speed_kmh"]:.0f} km/h at {_time(d["event_time"])}</title></circle>')  # fmt: skip
    title = f"{city}: {len(inside)} phones at their latest position"
    body.append(f'<text x="{pad}" y="{height - 2}" {FONT} fill="#495057">{escape(title)}</text>')
    return _svg(width, height, body, title)


def comments_heatmap(minutes: list[str], names: dict[str, str], comments: dict[str, dict[str, int]],
                     width: int = 860) -> str:  # fmt: skip
    """Comments per politician (rows) per minute (columns): darker is more; a storm is a dark run."""
    title = f"Comments per politician per minute, last {len(minutes)} minutes (UTC)"
    pages = sorted(comments)
    if not pages:
        return empty(title, "no comment stored in the last minutes", width)
    top = max((n for per in comments.values() for n in per.values()), default=0) or 1
    left, cell_h, top_pad = 170, 18, 22
    cell_w = (width - left - 60) / len(minutes)
    height = top_pad + cell_h * len(pages) + 24
    body = []
    for r, page in enumerate(pages):
        yy = top_pad + r * cell_h
        label = f"{names.get(page, '')} ({page})"
        body.append(f'<text x="4" y="{yy + 13}" {FONT}>{escape(label)}</text>')
        total = 0
        for c, minute in enumerate(minutes):
            n = comments[page].get(minute, 0)
            total += n
            shade = 0 if not n else 0.12 + 0.88 * n / top
            body.append(f'<rect x="{left + c * cell_w:.1f}" y="{yy}" width="{cell_w - 1:.1f}" height="{cell_h - 2}" '
                        f'fill="#e8590c" fill-opacity="{shade:.2f}" stroke="#f1f3f5">'
                        f"<title>{escape(page)} {minute[8:10]}:{minute[10:]} {n} comments</title></rect>")  # fmt: skip
        body.append(f'<text x="{width - 56}" y="{yy + 13}" {FONT} class="num">{total:,}</text>')
    for c in (0, len(minutes) // 2, len(minutes) - 1):
        m = minutes[c]
        body.append(f'<text x="{left + c * cell_w:.1f}" y="{top_pad - 6}" {FONT} fill="#666">{m[8:10]}:{m[10:]}</text>')
    body.append(f'<text x="{width - 56}" y="{top_pad - 6}" {FONT} fill="#666">total</text>')
    body.append(f'<text x="{left}" y="{height - 6}" {FONT} fill="#666">darkest: {top:,} comments in a minute</text>')
    return _svg(width, height, body, title)


def fragment(data: dict[str, Any]) -> str:
    """Everything that refreshes: maps, zone events, comments, dead letters."""
    zones_by_city: dict[str, list[dict]] = defaultdict(list)
    for z in data["zones"]:
        zones_by_city[z["city"]].append(z)
    maps = "".join(f'<div class="card">{city_map(c, zs, data["devices"])}</div>' for c, zs in sorted(zones_by_city.items()))
    if not data["devices"]:
        maps += '<p class="muted">No phone position stored in this namespace yet (the geo source is off, or starting).</p>'
    events = "".join(
        f"<tr><td>{_time(e['event_time'])}</td><td>{escape(e['device_id'])}</td>"
        f"<td>{escape(e['from_zone'] or 'outside')} &rarr; {escape(e['to_zone'] or 'outside')}</td></tr>"
        for e in data["zone_events"]
    ) or "<tr><td colspan='3' class='muted'>no zone entered or left yet</td></tr>"  # fmt: skip
    dead = "".join(
        f"<tr><td>{_time(d['kafka_ts'])}</td><td>{escape(d['reason'])}</td><td>{escape(d['topic'])}/{d['partition']}"
        f"@{d['offset']}</td><td class='num'>{d['value_bytes']:,}</td><td><code>{escape(d['value'])}</code></td></tr>"
        for d in data["dead"]
    ) or "<tr><td colspan='5' class='muted'>no dead letters</td></tr>"  # fmt: skip
    missing = "".join(f'<p class="warn">table {escape(m)} does not exist (nothing ran in this namespace?)</p>'
                      for m in data["missing"])  # fmt: skip
    reads = data["reads"]
    return f"""{missing}
<p class="muted">Read at {_time(data["at_ms"])} UTC from namespace <b>{escape(data["namespace"])}</b>:
{reads["scans"]} bounded scans, {reads["rows"]} rows.</p>
<h2>Phones and zones</h2><div class="grid">{maps}
<div class="card"><b>Newest zone enter / leave</b> (the {len(data["zone_events"])} phones that moved last)
<table><tr><th>time</th><th>phone</th><th>zone</th></tr>{events}</table></div></div>
<h2>What is being said</h2>{comments_heatmap(data["minutes"], data["politicians"], data["comments"])}
<h2>Newest dead letters</h2>
<table><tr><th>Kafka time</th><th>reason</th><th>topic/partition@offset</th><th>bytes</th><th>value (start)</th></tr>{dead}</table>"""


def render(data: dict[str, Any], namespaces: list[str], refresh_s: float) -> str:
    """The whole page: a namespace picker, the fragment, and the refresh loop."""
    options = "".join(f'<option{" selected" if n == data["namespace"] else ""}>{escape(n)}</option>' for n in namespaces)
    query = urlencode({"ns": data["namespace"]})
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Tormenta live</title>
<style>{CSS}</style></head><body>
<h1>Live: what is in HBase now</h1>
<form method="get"><label>namespace <select name="ns" onchange="this.form.submit()">{options}</select></label>
<span class="muted">refreshes every {refresh_s:g} s &middot; <a href="api/live?{escape(query)}">JSON</a></span></form>
<div id="live">{fragment(data)}</div>
<script>
(function () {{
  var every = {int(refresh_s * 1000)};
  function tick() {{
    fetch("live/fragment?{query}", {{credentials: "same-origin"}})
      .then(function (r) {{ return r.ok ? r.text() : null; }})
      .then(function (html) {{ if (html !== null) document.getElementById("live").innerHTML = html; }})
      .catch(function () {{}})
      .finally(function () {{ setTimeout(tick, every); }});
  }}
  setTimeout(tick, every);
}})();
</script>
</body></html>"""

"""Small server-side SVG charts (no JavaScript, no network): the page works offline."""

from __future__ import annotations

import math
from html import escape

from tormenta.latency import human

COLORS = {"micro-batch": "#0b7285", "batch": "#e8590c"}
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" class="chart">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")  # fmt: skip


def _legend(series: list[str], x: int, y: int) -> list[str]:
    out = []
    for i, name in enumerate(series):
        cx = x + i * 130
        out.append(f'<rect x="{cx}" y="{y - 9}" width="10" height="10" fill="{COLORS.get(name, "#555")}"/>')
        out.append(f'<text x="{cx + 14}" y="{y}" {FONT}>{escape(name)}</text>')
    return out


def empty(title: str, message: str, width: int = 640, height: int = 80) -> str:
    return _svg(width, height, [f'<text x="10" y="40" {FONT} fill="#666">{escape(message)}</text>'], title)


def latency_histogram(labels: list[str], series: dict[str, list[int]], width: int = 640, height: int = 260) -> str:
    """Share of records per latency bucket, one bar per run in each bucket."""
    title = "End-to-end latency per record (event time to stored in HBase)"
    series = {k: v for k, v in series.items() if v and sum(v)}
    if not series:
        return empty(title, "no records with a latency yet")
    used = [i for i in range(len(labels)) if any(v[i] for v in series.values())]
    lo, hi = min(used), max(used)
    idx = list(range(lo, hi + 1))
    left, right, top, bottom = 40, 10, 24, 58
    pw, ph = width - left - right, height - top - bottom
    group = pw / len(idx)
    bar = max(2.0, group / (len(series) + 1))
    body = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#999"/>']
    for frac in (0.25, 0.5, 0.75, 1.0):
        y = top + ph - frac * ph
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{int(frac * 100)}%</text>')
    for j, (name, counts) in enumerate(series.items()):
        total = sum(counts)
        for k, i in enumerate(idx):
            share = counts[i] / total
            h = share * ph
            x = left + k * group + bar * (j + 0.5)
            body.append(f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                        f'fill="{COLORS.get(name, "#555")}"><title>{escape(name)} {escape(labels[i])}: '
                        f'{counts[i]} records ({share:.1%})</title></rect>')  # fmt: skip
    for k, i in enumerate(idx):
        x = left + k * group + group / 2
        body.append(f'<text transform="translate({x:.1f},{top + ph + 10}) rotate(40)" {FONT}>{escape(labels[i])}</text>')
    body += _legend(list(series), left, 14)
    return _svg(width, height, body, title)


def freshness(series: dict[str, list[tuple[int, float]]], starts: dict[str, int | None], width: int = 640,
              height: int = 260, bands: list[tuple[str, str, int, int]] = ()) -> str:  # fmt: skip
    """Age of the newest stored event at each write, over minutes since each run started (log y).
    ``bands``: (series, label, from ms, until ms) spans shaded under that series' time (storms)."""
    title = "Data freshness: age of the newest stored event"
    series = {k: v for k, v in series.items() if v}
    if not series:
        return empty(title, "nothing stored yet")
    pts = {name: [((t - (starts.get(name) or v[0][0])) / 60000, max(age, 0.01)) for t, age in v]
           for name, v in series.items()}  # fmt: skip
    spans = [(label, (t0 - (starts.get(name) or series[name][0][0])) / 60000,
              (t1 - (starts.get(name) or series[name][0][0])) / 60000)
             for name, label, t0, t1 in bands if name in series]  # fmt: skip
    xmax = max([max(x for x, _ in p) for p in pts.values()] + [x1 for _, _, x1 in spans]) or 1.0
    ymin = math.floor(math.log10(min(min(a for _, a in p) for p in pts.values())))
    ymax = max(math.ceil(math.log10(max(max(a for _, a in p) for p in pts.values()))), ymin + 1)
    left, right, top, bottom = 56, 10, 24, 34
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + max(0.0, x) / xmax * pw

    def sy(a: float) -> float:
        return top + ph - (math.log10(a) - ymin) / (ymax - ymin) * ph

    body = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#999"/>']
    for label, x0, x1 in spans:
        body.append(f'<rect class="band" x="{sx(x0):.1f}" y="{top}" width="{max(1.0, sx(x1) - sx(x0)):.1f}" '
                    f'height="{ph}" fill="#ffd8a8" opacity="0.5"><title>{escape(label)}</title></rect>')
        body.append(f'<text x="{sx(x0) + 3:.1f}" y="{top + 10}" {FONT}>{escape(label)}</text>')
    for e in range(ymin, ymax + 1):
        y = sy(10**e)
        label = human(10**e * 1000)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{escape(label)}</text>')
    for k in range(5):
        x = xmax * k / 4
        body.append(f'<text x="{sx(x):.1f}" y="{top + ph + 14}" text-anchor="middle" {FONT}>{x:.1f}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle" {FONT}>minutes since the run started</text>')
    for name, p in pts.items():
        color = COLORS.get(name, "#555")
        if len(p) > 1:
            path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(a):.1f}" for i, (x, a) in enumerate(p))
            body.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.2"/>')
        for x, a in p[:: max(1, len(p) // 60)] if len(p) > 1 else p:
            body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(a):.1f}" r="3" fill="{color}"><title>{escape(name)}: '
                        f"{a:,.1f} s at minute {x:.1f}</title></circle>")  # fmt: skip
    body += _legend(list(pts), left, 14)
    return _svg(width, height, body, title)


def grouped_bars(values: dict[str, dict[str, float]], unit: str, title: str, width: int = 640) -> str:
    """Horizontal bars: one group per component, one bar per run."""
    comps = sorted({c for v in values.values() for c in v})
    if not comps:
        return empty(title, "no measurements for these runs")
    names = [n for n in values if values[n]]
    row, gap, left, top = 16, 10, 110, 24
    height = top + len(comps) * (row * len(names) + gap) + 10
    vmax = max((v for d in values.values() for v in d.values()), default=1) or 1
    pw = width - left - 90
    body = []
    y = top
    for comp in comps:
        body.append(f'<text x="{left - 6}" y="{y + row * len(names) / 2 + 4:.1f}" text-anchor="end" {FONT}>{escape(comp)}</text>')
        for name in names:
            v = values[name].get(comp)
            if v is not None:
                w = v / vmax * pw
                body.append(f'<rect x="{left}" y="{y}" width="{max(w, 1):.1f}" height="{row - 3}" '
                            f'fill="{COLORS.get(name, "#555")}"><title>{escape(name)} {escape(comp)}: {v:,.1f} {unit}</title></rect>')  # fmt: skip
                body.append(f'<text x="{left + w + 4:.1f}" y="{y + row - 5}" {FONT}>{v:,.1f} {escape(unit)}</text>')
            y += row
        y += gap
    body += _legend(names, left, 14)
    return _svg(width, height, body, title)

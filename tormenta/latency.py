"""End-to-end latency (event time -> stored in HBase) as a fixed-bucket histogram.

Every batch (a micro-batch or a batch window) stores the histogram of its records' latencies
next to exact percentiles, so the latencies of a whole run can be merged and compared without
keeping one value per record. Buckets are roughly logarithmic, from 50 ms to 2 days.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

# Upper bounds (ms, inclusive) of every bucket but the last, which takes everything above.
EDGES_MS: tuple[int, ...] = (
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000,
    30_000, 45_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000,
    43_200_000, 86_400_000, 172_800_000,
)  # fmt: skip


def histogram(values_ms: Iterable[float]) -> list[int]:
    counts = [0] * (len(EDGES_MS) + 1)
    for v in values_ms:
        counts[bisect.bisect_left(EDGES_MS, v)] += 1
    return counts


def merge(histograms: Iterable[list[int]]) -> list[int]:
    total = [0] * (len(EDGES_MS) + 1)
    for h in histograms:
        if h and len(h) == len(total):
            for i, n in enumerate(h):
                total[i] += n
    return total


def percentile(hist: list[int], p: float) -> float | None:
    """The p-th percentile, interpolated inside its bucket (an estimate within one bucket)."""
    n = sum(hist)
    if n == 0:
        return None
    rank = p / 100 * n
    seen = 0
    for i, count in enumerate(hist):
        if count and seen + count >= rank:
            lo = 0 if i == 0 else EDGES_MS[i - 1]
            hi = EDGES_MS[i] if i < len(EDGES_MS) else EDGES_MS[-1] * 2
            return lo + (hi - lo) * max(0.0, rank - seen) / count
        seen += count
    return float(EDGES_MS[-1])


def human(ms: float) -> str:
    """A short duration: 750ms, 1.5s, 17m, 2.8h, 1.2d (two significant digits)."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{float(f'{ms / size:.2g}'):g}{unit}"
    return f"{ms:.0f}ms"


def label(i: int) -> str:
    """Human label of bucket i, e.g. '1s-1.5s'."""
    fmt = human

    if i == 0:
        return f"<{fmt(EDGES_MS[0])}"
    if i >= len(EDGES_MS):
        return f">{fmt(EDGES_MS[-1])}"
    return f"{fmt(EDGES_MS[i - 1])}-{fmt(EDGES_MS[i])}"

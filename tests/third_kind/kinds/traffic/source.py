"""Simulated drivers reporting incidents: report ``n`` is a pure function of n, so a replay sends
the same events."""

from __future__ import annotations

import time
from typing import Any

from ingestors.sources.base import Opened, envelope

from .contract import KIND

COMMAND = "traffic"  # python -m ingestors.runner traffic --roads 5 --rate 50
HELP = "simulated drivers reporting road incidents"


class ReportFeed:
    kind = KIND

    def __init__(self, roads: int, name: str = "traffic", limit: int | None = None) -> None:
        self.roads, self.name, self.limit, self.n = roads, name, limit, 0

    def poll(self, max_records: int) -> list[dict[str, Any]] | None:
        if self.limit is not None and self.n >= self.limit:
            return None
        count = max_records if self.limit is None else min(max_records, self.limit - self.n)
        now = int(time.time() * 1000)
        out = []
        for n in range(self.n, self.n + count):
            event = envelope(KIND, f"report-{n:010d}", now, self.name)
            event.update(road_id=f"road-{n % self.roads:03d}", severity=n % 5, note=["jam", "crash", "works"][n % 3])
            out.append(event)
        self.n += count
        return out

    def close(self) -> None:
        pass


def add_arguments(parser) -> None:
    parser.add_argument("--roads", type=int, default=10)
    parser.add_argument("--rate", type=float, default=50.0, help="reports per second")
    parser.add_argument("--max-events", type=int, default=None)


def open_source(args, name: str, producer) -> Opened:
    if args.roads < 1:
        raise ValueError("--roads must be >= 1")
    return Opened(ReportFeed(args.roads, name=name, limit=args.max_events), rate=args.rate)

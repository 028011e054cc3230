"""How the two paths' geo aggregates compare over a batch window (``tormenta.agreement``).

* ``geo_trips``: per trip, the positions the micro-batch stored with an event time in the window
  against the window's contribution; a trip wholly inside the window must also have the same
  distance and top speed (one that started before it has a distance from the position before);
* ``geo_zone_events``: every zone enter/leave with an event time in the window, on both sides.
"""

from __future__ import annotations

import json
from collections import Counter

from tormenta.agreement import Scope, Tally, close, counted, first_positions, near_counts, sum_docs
from tormenta.contracts import key_part, split_row_key

from .contract import KIND


def checks(scope: Scope) -> list[Tally]:
    events = scope.micro_events(KIND.events_table, ("device_id", "trip_id"))

    trips = Tally("geo_trips")
    points = Counter(key_part(e["trip_id"]) for e in events if scope.inside(e["event_time"]))
    slack = near_counts(scope, events, lambda e: key_part(e["trip_id"]))
    batch = {row: json.loads(value) for row, value in scope.batch_cells("geo_trips").items()}
    wanted = set(points) | set(batch)
    totals = {row: sum_docs(values, ("distance_m", "points")) | {"max_speed_kmh": max(
              (json.loads(v)["max_speed_kmh"] or 0 for v in values), default=0)}
              for row, values in scope.micro_totals("geo_trips", wanted.__contains__).items()}  # fmt: skip
    for row in sorted(wanted):
        b = batch.get(row, {"points": 0, "distance_m": 0.0, "max_speed_kmh": 0})
        m_points = points.get(row, 0)
        if m_points == b["points"]:
            t = totals.get(row, {})
            whole = t.get("points") == m_points  # every position of the trip is inside the window
            equal = close(t.get("distance_m"), b["distance_m"], 1e-3) and close(t.get("max_speed_kmh"),
                                                                                  b["max_speed_kmh"])  # fmt: skip
            verdict = "same" if equal else ("differ" if whole else "edge")
            trips.add(row, verdict, {"points": m_points, **t}, b)
        else:
            counted(row, trips, m_points, b["points"], slack[row])

    zones = Tally("geo_zone_events")
    inside = lambda row: scope.inside(int(split_row_key(row)[1]))  # noqa: E731
    micro = scope.rows("geo_zone_events", scope.micro_ns, inside)
    batch_rows = scope.rows("geo_zone_events", scope.batch_ns, inside)
    first = {key_part(d): t for d, t in first_positions(scope, events, "device_id").items()}
    cols = (b"d:from_zone", b"d:to_zone")
    for row in sorted(set(micro) | set(batch_rows)):
        m = {c.decode(): micro[row][c].decode() for c in cols if c in micro.get(row, {})}
        b = {c.decode(): batch_rows[row][c].decode() for c in cols if c in batch_rows.get(row, {})}
        device, t, _ = row.split("|", 2)
        if m == b:
            zones.add(row, "same", m, b)
        elif scope.near(int(t)) or first.get(device) == int(t):
            zones.add(row, "edge", m or None, b or None)
        else:
            zones.add(row, "differ", m or None, b or None)
    return [trips, zones]

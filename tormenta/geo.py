"""The mobile-geolocation model: zones, distances and the per-device rules in plain Python.

Per device, positions sorted by event time continue from the state left by the previous
micro-batch: the zone of each point (city zones as lat/lon boxes), zone entered/left events,
the distance added to each trip (haversine between consecutive points of the same trip), the
speed computed from consecutive points, and the new state.

:func:`process_device` is these rules over one device; ``kinds/geo/rules.py`` runs the
same rules as Spark SQL, and the tests hold the SQL to this model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Zone:
    zone_id: str
    city: str
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.lat_min <= lat <= self.lat_max and self.lon_min <= lon <= self.lon_max


def zone_of(lat: float, lon: float, zones: list[Zone]) -> str:
    """First zone (by zone id) containing the point, or "" outside every zone."""
    for z in zones:
        if z.contains(lat, lon):
            return z.zone_id
    return ""


@dataclass
class DeviceState:
    """What the next micro-batch needs to know about a device."""

    lat: float
    lon: float
    event_time: int
    zone: str
    trip_id: str


@dataclass
class DeviceResult:
    state: DeviceState | None
    zone_events: list[dict[str, Any]] = field(default_factory=list)
    # trip_id -> {"distance_m", "points", "max_speed_kmh"} contributed by these positions
    trips: dict[str, dict[str, float]] = field(default_factory=dict)
    # event_id -> (zone, computed speed km/h or None)
    per_event: dict[str, tuple[str, float | None]] = field(default_factory=dict)


def process_device(
    positions: list[dict[str, Any]], previous: DeviceState | None, zones: list[Zone]
) -> DeviceResult:
    """Continue one device's track with ``positions`` (any order; sorted here by time, id)."""
    ordered = sorted(positions, key=lambda p: (p["event_time"], p["event_id"]))
    result = DeviceResult(state=previous)
    prev = previous
    for p in ordered:
        zone = zone_of(p["lat"], p["lon"], zones)
        speed = None
        trip = result.trips.setdefault(p["trip_id"], {"distance_m": 0.0, "points": 0, "max_speed_kmh": 0.0})
        trip["points"] += 1
        trip["max_speed_kmh"] = max(trip["max_speed_kmh"], float(p["speed_kmh"]))
        if prev is not None and prev.trip_id == p["trip_id"]:
            dist = haversine_m(prev.lat, prev.lon, p["lat"], p["lon"])
            trip["distance_m"] += dist
            dt_s = (p["event_time"] - prev.event_time) / 1000
            if dt_s > 0:
                speed = dist / dt_s * 3.6
        if (prev.zone if prev else "") != zone:
            result.zone_events.append({
                "event_id": p["event_id"], "event_time": p["event_time"],
                "from_zone": prev.zone if prev else "", "to_zone": zone,
            })  # fmt: skip
        result.per_event[p["event_id"]] = (zone, speed)
        prev = DeviceState(p["lat"], p["lon"], p["event_time"], zone, p["trip_id"])
    result.state = prev
    return result

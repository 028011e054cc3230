"""The geo position contract: one XY position of a phone on a trip."""

from tormenta.cities import CITIES
from tormenta.eventkind import EventKind, Expectation

# lat/lon inside one of the cities the platform serves (its reference data)
IN_A_CITY = " OR ".join(f"(lat BETWEEN {la0} AND {la1} AND lon BETWEEN {lo0} AND {lo1})"
                        for la0, la1, lo0, lo1 in CITIES.values())  # fmt: skip

KIND = EventKind(
    name="geo.position",
    version=1,
    topic="tormenta.geo.positions",
    key_field="device_id",
    fields={
        "device_id": "string",
        "trip_id": "string",
        "lat": "double",
        "lon": "double",
        "speed_kmh": "double",
    },
    max_bytes=1024,
    events_table="geo_positions",
    ranges={"lat": (-90.0, 90.0), "lon": (-180.0, 180.0), "speed_kmh": (0.0, 400.0)},
    ids=("trip_id",),
    expectations=(
        Expectation("position within a served city", IN_A_CITY, "warn"),
        Expectation("speed under 250 km/h", "speed_kmh < 250", "drop"),
    ),
    realtime="the contract's validation and dead letters, the expectations, the latest position per device",
    tables={
        # latest position per device, row "<device_id>"; cell timestamp = event time (newest wins)
        "geo_latest": {"d": {"max_versions": 1}},
        # per-device state between micro-batches, row "<device_id>"; s:last, cell ts = batch id + 1
        "geo_state": {"s": {"max_versions": 5}},
        # zone entered/left, row "<device_id>|<event_time:013d>|<event_id>"
        "geo_zone_events": {"d": {"max_versions": 1}},
        # distance per trip, row "<trip_id>"; m:<batch> = JSON {distance_m, points, max_speed_kmh}
        "geo_trips": {"m": {"max_versions": 1}},
    },
)

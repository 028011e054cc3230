"""The traffic report contract: one incident a driver reports on a road."""

from tormenta.eventkind import EventKind, Expectation

KIND = EventKind(
    name="traffic.report",
    version=1,
    topic="tormenta.traffic.reports",
    key_field="road_id",
    fields={"road_id": "string", "severity": "long", "note": "string"},
    max_bytes=2048,
    events_table="traffic_reports",
    # a report outside the scale is a broken client: stop rather than store it (and see it)
    expectations=(Expectation("severity from 0 to 4", "severity BETWEEN 0 AND 4", "fail"),),
    tables={
        # reports per road, row "<road_id>"; m:<batch> = this batch's count
        "traffic_roads": {"m": {"max_versions": 1}},
    },
)

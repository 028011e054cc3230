"""The traffic report contract: one incident a driver reports on a road."""

from tormenta.eventkind import EventKind

KIND = EventKind(
    name="traffic.report",
    version=1,
    topic="tormenta.traffic.reports",
    key_field="road_id",
    fields={"road_id": "string", "severity": "long", "note": "string"},
    max_bytes=2048,
    events_table="traffic_reports",
    tables={
        # reports per road, row "<road_id>"; m:<batch> = this batch's count
        "traffic_roads": {"m": {"max_versions": 1}},
    },
)

"""What the live view shows of a namespace's HBase tables, read with bounded row ranges only.

Every read is a scan with a start/stop row, a prefix or a limit, so a view costs the same however
long the tables grow (``reads`` counts them; ``bench/ui.py`` times a view):

* the latest position of at most ``MAX_DEVICES`` devices (``geo_latest``, one row per device);
* the zones (``ref_zones``, the reference data: a few dozen rows);
* the newest zone enter/leave of the ``EVENT_DEVICES`` devices that moved last: one reverse scan
  of ``geo_zone_events`` with limit 1 per device (its rows are ``<device>|<time>|<event id>``);
* comments per politician per minute for the last ``MINUTES`` minutes: one range scan per page of
  ``social_minute`` (rows ``<page>|<yyyyMMddHHmm>``);
* the newest dead letters: a reverse scan of ``DEAD_PER_PARTITION`` rows per topic partition of
  ``dead_letters`` (rows ``<topic>|<partition>|<offset>``).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from tormenta.contracts import (
    KINDS,
    TOPIC_PARTITIONS,
    key_part,
    minute_bucket,
    row_key,
    split_row_key,
    table_name,
    topic_for,
)

MAX_DEVICES = 500
EVENT_DEVICES = 20
MINUTES = 30
MAX_PAGES = 50
DEAD_PER_PARTITION = 5
DEAD_SHOWN = 20
VALUE_PREVIEW = 160


class Reads:
    """How many scans a view made and how many rows they returned."""

    def __init__(self, conn) -> None:
        self.conn, self.scans, self.rows = conn, 0, 0

    def scan(self, table: str, **kwargs) -> list[tuple[bytes, dict[bytes, bytes]]]:
        self.scans += 1
        out = list(self.conn.table(table).scan(**kwargs))
        self.rows += len(out)
        return out


def snapshot(conn, namespace: str, now_ms: int | None = None) -> dict[str, Any]:
    """The live view's data for ``namespace``: devices, zones, newest zone events, comments per
    politician per minute, newest dead letters; ``missing`` names tables that do not exist."""
    now_ms = now_ms or int(time.time() * 1000)
    tables = set(conn.tables())
    reads = Reads(conn)

    def t(logical: str) -> str | None:
        name = table_name(logical, namespace)
        return name if name.encode() in tables else None

    missing = [table_name(x, namespace) for x in ("geo_latest", "social_minute", "dead_letters") if t(x) is None]
    zones = []
    if t("ref_zones"):
        zones = [json.loads(c[b"d:json"]) for _, c in reads.scan(t("ref_zones"), columns=[b"d:json"], limit=500)]

    devices = []
    if t("geo_latest"):
        cols = [b"d:lat", b"d:lon", b"d:zone", b"d:event_time", b"d:speed_kmh"]
        for key, c in reads.scan(t("geo_latest"), columns=cols, limit=MAX_DEVICES):
            devices.append({"device_id": key.decode(), "lat": float(c.get(b"d:lat", b"0")),
                            "lon": float(c.get(b"d:lon", b"0")), "zone": c.get(b"d:zone", b"").decode(),
                            "speed_kmh": float(c.get(b"d:speed_kmh", b"0") or 0),
                            "event_time": int(c.get(b"d:event_time", b"0"))})  # fmt: skip

    zone_events = []
    if t("geo_zone_events"):
        for d in sorted(devices, key=lambda d: -d["event_time"])[:EVENT_DEVICES]:
            prefix = key_part(d["device_id"]).encode() + b"|"
            for key, c in reads.scan(t("geo_zone_events"), row_start=prefix + b"\xff", row_stop=prefix,
                                     reverse=True, limit=1):  # fmt: skip
                zone_events.append({"device_id": d["device_id"], "event_time": int(split_row_key(key)[1]),
                                    "from_zone": c.get(b"d:from_zone", b"").decode(),
                                    "to_zone": c.get(b"d:to_zone", b"").decode()})  # fmt: skip
        zone_events.sort(key=lambda e: -e["event_time"])

    minutes = [minute_bucket(now_ms - (MINUTES - 1 - i) * 60_000) for i in range(MINUTES)]
    comments: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    if t("social_minute"):
        if t("ref_politicians"):
            for key, c in reads.scan(t("ref_politicians"), columns=[b"d:name"], limit=MAX_PAGES):
                names[key.decode()] = c.get(b"d:name", b"").decode()
        for page in sorted(names):
            per: dict[str, int] = defaultdict(int)
            for key, c in reads.scan(t("social_minute"), row_start=row_key(page, minutes[0]),
                                     row_stop=row_key(page, minute_bucket(now_ms + 60_000))):  # fmt: skip
                minute = split_row_key(key)[-1]
                per[minute] += sum(json.loads(v)["comments"] for col, v in c.items() if col.startswith(b"m:"))
            comments[page] = dict(per)

    dead = []
    if t("dead_letters"):
        for kind in KINDS.values():
            topic = topic_for(kind, namespace)
            for part in range(TOPIC_PARTITIONS):
                prefix = f"{topic}|{part:04d}|".encode()
                cols = [b"d:reason", b"d:kafka_ts", b"d:value", b"d:value_bytes"]
                for key, c in reads.scan(t("dead_letters"), row_start=prefix + b"\xff", row_stop=prefix, reverse=True,
                                         limit=DEAD_PER_PARTITION, columns=cols):  # fmt: skip
                    _, _, offset = key.decode().rsplit("|", 2)
                    dead.append({"topic": topic, "partition": part, "offset": int(offset),
                                 "reason": c.get(b"d:reason", b"").decode(), "kafka_ts": int(c.get(b"d:kafka_ts", b"0")),
                                 "value": c.get(b"d:value", b"")[:VALUE_PREVIEW].decode(errors="replace"),
                                 "value_bytes": int(c.get(b"d:value_bytes", b"0"))})  # fmt: skip
        dead = sorted(dead, key=lambda d: -d["kafka_ts"])[:DEAD_SHOWN]

    return {"namespace": namespace, "at_ms": now_ms, "missing": missing, "zones": zones, "devices": devices,
            "zone_events": zone_events, "minutes": minutes, "politicians": names, "comments": comments, "dead": dead,
            "reads": {"scans": reads.scans, "rows": reads.rows}}  # fmt: skip

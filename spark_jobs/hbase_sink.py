"""Partition-side work of one micro-batch (or batch window): validate, dedupe, enrich, write.

``process_partition`` is the whole per-partition pass (one Spark task per Kafka partition, or
per part of a batch window partitioned by entity): every record is checked against its
contract, poison goes to dead letters with its reason, copies of an event inside the batch are
dead-lettered (all copies of an event share its entity key, hence its partition), then the
social or geo rules run and the results are written. Runs inside Spark's Python workers. Every
write here is an idempotent overwrite: deterministic row keys, explicit cell timestamps taken
from the event (or the batch sequence), no Increment/Append. A replayed batch therefore leaves
HBase as it was (event rows carry the batch's ``seq + 1`` as cell timestamp; their event time is
the ``d:event_time`` cell). Cross-batch duplicates are recognised through ``d:batch``, the label of the
batch that stored an event first: seen under another label means a duplicate.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tormenta.contracts import (
    DEFAULT_NAMESPACE,
    GEO,
    SOCIAL,
    batch_qualifier,
    dead_letter_row_key,
    event_row_key,
    table_name,
)
from tormenta.hbase import HBaseEndpoint, put_rows

CHUNK = 1000
DEAD_VALUE_LIMIT = 64 * 1024  # raw value kept in a dead letter (the full length is recorded)


@dataclass(frozen=True)
class BatchContext:
    """Everything a partition needs to know about the batch it belongs to (pickled to workers)."""

    label: str  # qualifier of this batch's aggregate contributions, e.g. "s0000000000042"
    seq: int  # monotonic across query versions; geo state cells use seq + 1 as timestamp
    endpoint: HBaseEndpoint
    namespace: str = DEFAULT_NAMESPACE
    put_batch_size: int = 1000

    def t(self, logical: str) -> str:
        """Physical HBase table name of a logical table."""
        return table_name(logical, self.namespace)


def _b(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _existing_batches(conn, table: str, keys: list[bytes]) -> dict[bytes, bytes]:
    """row key -> label of the batch that stored it first, for the keys already in HBase."""
    found: dict[bytes, bytes] = {}
    tbl = conn.table(table)
    for chunk in _chunks(keys, CHUNK):
        for key, cells in tbl.rows(chunk, columns=[b"d:batch"]):
            if b"d:batch" in cells:
                found[key] = cells[b"d:batch"]
    return found


def _dead_cells(row: Any, reason: str, label: str) -> dict[bytes, bytes]:
    value = row["value"] if row["value"] is not None else ""
    raw = value.encode("utf-8", errors="replace")
    return {
        b"d:reason": reason.encode(),
        b"d:topic": _b(row["topic"]),
        b"d:partition": _b(row["partition"]),
        b"d:offset": _b(row["offset"]),
        b"d:kafka_ts": _b(row["kafka_ts"]),
        b"d:key": (row["key"] or "").encode("utf-8", errors="replace"),
        b"d:value": raw[:DEAD_VALUE_LIMIT],
        b"d:value_bytes": _b(len(raw)),
        b"d:batch": label.encode(),
    }


def dead_letter_rows(rows: Iterable[Any], label: str) -> Iterator[tuple[bytes, dict, int]]:
    for r in rows:
        key = dead_letter_row_key(r["topic"], r["partition"], r["offset"])
        yield key, _dead_cells(r, r["reason"], label), int(r["kafka_ts"])


def write_dead_letters(ctx: BatchContext, rows: list[dict[str, Any]]) -> None:
    """Store poison records with their reason and Kafka coordinates.

    Retry: idempotent (row key = topic/partition/offset, cell timestamp = Kafka timestamp).
    """
    conn = ctx.endpoint.connect()
    try:
        put_rows(conn, ctx.t("dead_letters"), dead_letter_rows(rows, ctx.label), ctx.put_batch_size)
    finally:
        conn.close()


def _keep_new(conn, ctx: BatchContext, events_table: str, rows: list[Any]) -> tuple[list[Any], int]:
    """Split off events another batch already stored; dead-letter those as duplicates.

    Returns (events new to HBase or stored by this same batch before a replay, duplicates).
    """
    keys = [event_row_key(r["event_id"]) for r in rows]
    seen = _existing_batches(conn, ctx.t(events_table), keys)
    new, dups = [], []
    own = ctx.label.encode()
    for key, r in zip(keys, rows, strict=True):
        first_label = seen.get(key)
        (new if first_label is None or first_label == own else dups).append(r)
    dead = [{**r, "reason": "duplicate_event_id"} for r in dups]
    put_rows(conn, ctx.t("dead_letters"), dead_letter_rows(dead, ctx.label), ctx.put_batch_size)
    return new, len(dups)


def _envelope_cells(r: Any, label: str) -> dict[bytes, bytes]:
    return {
        b"d:event_time": _b(r["event_time"]),
        b"d:sent_at": _b(r["sent_at"]),
        b"d:source": _b(r["source"]),
        b"d:kafka": f"{r['topic']}:{r['partition']}:{r['offset']}".encode(),
        b"d:batch": label.encode(),
    }


def _decode(value: bytes | bytearray | None) -> str:
    return bytes(value).decode("utf-8", errors="replace") if value is not None else ""


def process_partition(ctx: BatchContext, kinds: dict[str, str], politicians: dict, devices: dict, zones: list,
                      rows: Iterable[Any]):  # fmt: skip
    """mapPartitions body: the records of one partition (Kafka-shaped rows: topic, partition,
    offset, kafka_ts, key, value in offset order) -> one summary dict for the driver.

    ``kinds``: topic -> contract name. A record from another topic fails the batch loudly.
    """
    from spark_jobs.transforms.social import add_comment_features
    from tormenta.contracts import KINDS, ContractError, validate

    read = 0
    dead: list[dict[str, Any]] = []
    good: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for r in rows:
        read += 1
        kind_name = kinds.get(r["topic"])
        if kind_name is None:
            raise ValueError(f"no contract for topic {r['topic']!r}; known: {sorted(kinds)}")
        coords = {"topic": r["topic"], "partition": r["partition"], "offset": r["offset"], "kafka_ts": r["kafka_ts"],
                  "key": _decode(r["key"]) if r["key"] is not None else None}  # fmt: skip
        raw = bytes(r["value"]) if r["value"] is not None else b""
        try:
            event = validate(raw, KINDS[kind_name], int(r["kafka_ts"]), key=coords["key"] or "")
        except ContractError as exc:
            dead.append({**coords, "value": _decode(raw), "reason": exc.reason})
            continue
        ident = (kind_name, str(event["event_id"]))
        if ident in seen:  # a later copy of an event already in this batch: the first one counts
            dead.append({**coords, "value": _decode(raw), "reason": "duplicate_event_id"})
            continue
        seen.add(ident)
        good[kind_name].append({**event, **coords, "value": _decode(raw)})

    summary: dict[str, Any] = {"read": read, "dead_by_reason": {}, "by_kind": {}, "minute": {}, "authors": {},
                               "event_times": []}  # fmt: skip
    for d in dead:
        summary["dead_by_reason"][d["reason"]] = summary["dead_by_reason"].get(d["reason"], 0) + 1
    if dead:
        write_dead_letters(ctx, dead)
    for kind_name, events in good.items():
        if kind_name == SOCIAL.name:
            part = write_social(ctx, politicians, [add_comment_features(e) for e in events])
            summary["minute"], summary["authors"] = part["minute"], part["authors"]
        else:
            part = write_geo(ctx, devices, zones, events)
        summary["by_kind"][kind_name] = {"valid": len(events), "new": part["new"], "dup_cross_batch": part["dup"]}
        summary["event_times"] += part["event_times"]
    yield summary


def write_social(ctx: BatchContext, politicians: dict[str, dict[str, str]], rows: list[dict[str, Any]]) -> dict:
    """The valid comments of one partition (with their features): write the new ones, enriched
    with politician and party; return per (page, minute) and per (page, author) partial counts,
    which the driver merges and writes. Retry: idempotent (see module docstring).
    """
    summary: dict[str, Any] = {"new": 0, "dup": 0, "event_times": [], "minute": {}, "authors": {}}
    conn = ctx.endpoint.connect()
    try:
        new, dups = _keep_new(conn, ctx, SOCIAL.events_table, rows)
        minute: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0, 0.0])
        authors: dict[tuple[str, str], int] = defaultdict(int)

        def puts():
            for r in new:
                ref = politicians.get(r["page_id"], {})
                cells = _envelope_cells(r, ctx.label)
                cells.update({
                    b"d:page_id": _b(r["page_id"]), b"d:post_id": _b(r["post_id"]),
                    b"d:author": _b(r["author"]), b"d:text": _b(r["text"]), b"d:lang": _b(r["lang"]),
                    b"d:politician": _b(ref.get("name", "")), b"d:party": _b(ref.get("party", "")),
                    b"d:mentions": _b(r["mentions"]), b"d:sentiment": _b(r["sentiment"]),
                })  # fmt: skip
                agg = minute[(r["page_id"], r["minute"])]
                agg[0] += 1
                agg[1] += r["mentions"]
                agg[2] += r["sentiment"]
                authors[(r["page_id"], r["author"])] += 1
                # One cell timestamp for the whole batch (seq + 1): deterministic, so a replay
                # rewrites identical cells, and one Thrift mutateRowsTs call per 1000 rows
                # (Thrift 1 takes one timestamp per call; per-event timestamps cost a call each).
                yield event_row_key(r["event_id"]), cells, ctx.seq + 1

        put_rows(conn, ctx.t(SOCIAL.events_table), puts(), ctx.put_batch_size)
        summary.update(
            new=len(new),
            dup=dups,
            event_times=[int(r["event_time"]) for r in new],
            minute={k: v for k, v in minute.items()},
            authors=dict(authors),
        )
    finally:
        conn.close()
    return summary


def write_social_aggregates(ctx: BatchContext, minute: dict, authors: dict, politicians: dict) -> None:
    """Driver side: this batch's contribution to each (page, minute) and (page, author) row.

    Retry: idempotent; the column is this batch's label, so a replay overwrites the same cell.
    """
    qual = batch_qualifier(ctx.label)

    def minute_rows():
        for (page, bucket), (count, mentions, sent_sum) in sorted(minute.items()):
            value = json.dumps(
                {"comments": count, "mentions": mentions, "sentiment_sum": round(sent_sum, 9),
                 "party": politicians.get(page, {}).get("party", "")},
                sort_keys=True,
            )  # fmt: skip
            yield f"{page}|{bucket}".encode(), {qual: value.encode()}, ctx.seq + 1

    def author_rows():
        for (page, author), count in sorted(authors.items()):
            yield f"{page}|{author}".encode(), {qual: _b(count)}, ctx.seq + 1

    conn = ctx.endpoint.connect()
    try:
        put_rows(conn, ctx.t("social_minute"), minute_rows(), ctx.put_batch_size)
        put_rows(conn, ctx.t("social_authors"), author_rows(), ctx.put_batch_size)
    finally:
        conn.close()


def write_geo(ctx: BatchContext, devices: dict, zones: list, rows: list[dict[str, Any]]) -> dict:
    """The valid positions of one partition (every position of a device is in it): continue
    each device's track. Reads each device's state as it was *before* this batch (cells older than seq + 1), so a
    replay computes exactly what the first attempt computed, then writes events, latest
    position, zone enter/leave events, trip distance contributions and the new state.
    Retry: idempotent (see module docstring).
    """
    from spark_jobs.transforms.geo import DeviceState, process_device

    summary: dict[str, Any] = {"new": 0, "dup": 0, "event_times": [], "trips": 0}
    conn = ctx.endpoint.connect()
    try:
        new, dups = _keep_new(conn, ctx, GEO.events_table, rows)
        by_device: dict[str, list[dict]] = defaultdict(list)
        for r in new:
            by_device[r["device_id"]].append(r)
        state_tbl = conn.table(ctx.t("geo_state"))
        previous: dict[str, DeviceState] = {}
        for chunk in _chunks(sorted(by_device), CHUNK):
            for key, cells in state_tbl.rows([d.encode() for d in chunk], columns=[b"s:last"],
                                             timestamp=ctx.seq + 1):
                if b"s:last" in cells:
                    previous[key.decode()] = DeviceState(**json.loads(cells[b"s:last"]))

        events, latest, zone_events, trips, states = [], [], [], [], []
        qual = batch_qualifier(ctx.label)
        for device, positions in sorted(by_device.items()):
            res = process_device(positions, previous.get(device), zones)
            ref = devices.get(device, {})
            newest = max(positions, key=lambda p: (p["event_time"], p["event_id"]))
            for p in positions:
                zone, speed = res.per_event[p["event_id"]]
                cells = _envelope_cells(p, ctx.label)
                cells.update({
                    b"d:device_id": _b(device), b"d:trip_id": _b(p["trip_id"]),
                    b"d:lat": _b(p["lat"]), b"d:lon": _b(p["lon"]), b"d:speed_kmh": _b(p["speed_kmh"]),
                    b"d:computed_speed_kmh": _b("" if speed is None else round(speed, 3)),
                    b"d:zone": _b(zone), b"d:driver": _b(ref.get("driver", "")),
                    b"d:vehicle": _b(ref.get("vehicle", "")), b"d:city": _b(ref.get("city", "")),
                })  # fmt: skip
                events.append((event_row_key(p["event_id"]), cells, ctx.seq + 1))  # see write_social
            zone_n, _ = res.per_event[newest["event_id"]]
            latest.append((device.encode(), {
                b"d:lat": _b(newest["lat"]), b"d:lon": _b(newest["lon"]),
                b"d:speed_kmh": _b(newest["speed_kmh"]), b"d:zone": _b(zone_n),
                b"d:trip_id": _b(newest["trip_id"]), b"d:event_time": _b(newest["event_time"]),
                b"d:event_id": _b(newest["event_id"]), b"d:batch": ctx.label.encode(),
            }, int(newest["event_time"])))  # fmt: skip
            for ze in res.zone_events:
                key = f"{device}|{ze['event_time']:013d}|{ze['event_id']}".encode()
                zone_events.append((key, {
                    b"d:from_zone": _b(ze["from_zone"]), b"d:to_zone": _b(ze["to_zone"]),
                    b"d:event_time": _b(ze["event_time"]), b"d:batch": ctx.label.encode(),
                }, int(ze["event_time"])))  # fmt: skip
            for trip_id, contrib in sorted(res.trips.items()):
                value = json.dumps({k: round(v, 6) for k, v in contrib.items()}, sort_keys=True)
                trips.append((trip_id.encode(), {qual: value.encode()}, ctx.seq + 1))
            st = res.state
            states.append((device.encode(), {b"s:last": json.dumps(st.__dict__, sort_keys=True).encode()},
                           ctx.seq + 1))  # fmt: skip

        put_rows(conn, ctx.t(GEO.events_table), events, ctx.put_batch_size)
        put_rows(conn, ctx.t("geo_latest"), latest, ctx.put_batch_size)
        put_rows(conn, ctx.t("geo_zone_events"), zone_events, ctx.put_batch_size)
        put_rows(conn, ctx.t("geo_trips"), trips, ctx.put_batch_size)
        # Cell timestamp seq + 1: a replay of this batch reads the state from before it.
        put_rows(conn, ctx.t("geo_state"), states, ctx.put_batch_size)
        summary.update(new=len(new), dup=dups, event_times=[int(r["event_time"]) for r in new],
                       trips=len(trips))  # fmt: skip
    finally:
        conn.close()
    return summary

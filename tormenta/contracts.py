"""Event contracts: the one place that says what travels through Kafka and lands in HBase.

Every event is one flat JSON object (UTF-8) with a common envelope

    schema      "social.comment" | "geo.position"        which contract
    v           1                                         contract version
    event_id    non-empty string, unique per event        idempotency key end to end
    event_time  epoch milliseconds (when it happened)
    source      which source client produced it          e.g. "page-feed/ingestor-1"
    sent_at     epoch milliseconds (producer send time)

plus the fields of its kind. Unknown fields are refused (dead letter ``unexpected_field``), so
a producer bug is seen at once instead of being silently dropped.

Kafka: one topic per kind, keyed by the source entity (politician page, device), so events of
one entity keep their order. HBase: row keys are deterministic (business key or event id),
every cell timestamp derives from the event, the Kafka record or the micro-batch, so replays
overwrite themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

ENVELOPE: dict[str, str] = {
    "schema": "string",
    "v": "long",
    "event_id": "string",
    "event_time": "long",
    "source": "string",
    "sent_at": "long",
}

# Event times are checked against the Kafka record timestamp (set when the producer sent it),
# never against the wall clock of the job: a replayed batch must classify exactly as before.
MAX_FUTURE_MS = 5 * 60 * 1000  # 5 minutes of clock skew
MAX_PAST_MS = 7 * 24 * 3600 * 1000  # a week of buffering at the source


@dataclass(frozen=True)
class EventKind:
    name: str  # value of the "schema" field
    version: int
    topic: str
    key_field: str  # Kafka key: the source entity
    fields: dict[str, str]  # kind-specific field -> type ("string", "long", "double")
    max_bytes: int
    events_table: str
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def all_fields(self) -> dict[str, str]:
        return {**ENVELOPE, **self.fields}


SOCIAL = EventKind(
    name="social.comment",
    version=1,
    topic="tormenta.social.comments",
    key_field="page_id",
    fields={
        "page_id": "string",  # the politician's page
        "post_id": "string",
        "author": "string",
        "text": "string",
        "lang": "string",
    },
    max_bytes=16 * 1024,
    events_table="social_comments",
)

GEO = EventKind(
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
)

KINDS: dict[str, EventKind] = {k.name: k for k in (SOCIAL, GEO)}
TOPIC_PARTITIONS = 4  # >= the cores Spark gets locally; keys (pages, devices) spread over them
BY_TOPIC: dict[str, EventKind] = {k.topic: k for k in KINDS.values()}


def topic_for(kind: EventKind, namespace: str = "tormenta") -> str:
    """Topic of ``kind`` in a namespace: "tormenta.social.comments" -> "<namespace>.social.comments"."""
    if not namespace.replace("_", "").isalnum():
        raise ValueError(f"invalid namespace {namespace!r}")
    return kind.topic if namespace == "tormenta" else f"{namespace}.{kind.topic.split('.', 1)[1]}"


def topics_for(namespace: str = "tormenta") -> dict[str, EventKind]:
    """topic -> kind for every contract in a namespace (what the streaming job subscribes to)."""
    return {topic_for(k, namespace): k for k in KINDS.values()}

# --- HBase tables --------------------------------------------------------------------------
# Physical name = "<namespace>_<logical>" (namespace "tormenta" by default; tests use their own).
DEFAULT_NAMESPACE = "tormenta"


def table_name(logical: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    if logical not in TABLES:
        raise KeyError(f"unknown table {logical!r}")
    if not namespace.replace("_", "").isalnum():
        raise ValueError(f"invalid namespace {namespace!r}")
    return f"{namespace}_{logical}"


# logical name -> {family: options}. Families are short; "d" data, "m" per-batch contributions, "s" state.
TABLES: dict[str, dict[str, dict[str, Any]]] = {
    # events, row key "<salt>|<event_id>"; d:batch = micro-batch (or window) that stored it first
    SOCIAL.events_table: {"d": {"max_versions": 1}},
    GEO.events_table: {"d": {"max_versions": 1}},
    # social per politician and minute, row "<page_id>|<yyyyMMddHHmm>"; m:<batch> = JSON counts
    "social_minute": {"m": {"max_versions": 1}},
    # social per politician and author, row "<page_id>|<author>"; m:<batch> = comment count
    "social_authors": {"m": {"max_versions": 1}},
    # latest position per device, row "<device_id>"; cell timestamp = event time (newest wins)
    "geo_latest": {"d": {"max_versions": 1}},
    # per-device state between micro-batches, row "<device_id>"; s:last, cell ts = batch id + 1
    "geo_state": {"s": {"max_versions": 5}},
    # zone entered/left, row "<device_id>|<event_time:013d>|<event_id>"
    "geo_zone_events": {"d": {"max_versions": 1}},
    # distance per trip, row "<trip_id>"; m:<batch> = JSON {distance_m, points, max_speed_kmh}
    "geo_trips": {"m": {"max_versions": 1}},
    # reference data for enrichment (seeded by `tormenta seed`)
    "ref_politicians": {"d": {"max_versions": 1}},
    "ref_devices": {"d": {"max_versions": 1}},
    "ref_zones": {"d": {"max_versions": 1}},
    # poison input, row "<topic>|<partition:04d>|<offset:020d>"
    "dead_letters": {"d": {"max_versions": 1}},
    # one row per micro-batch, row "<query>|<batch_id:012d>"
    "batch_metrics": {"d": {"max_versions": 1}},
    # one row per batch-archetype run, row "<window label>|<run id>": d:doc = JSON record
    "batch_runs": {"d": {"max_versions": 1}},
    # CPU-seconds and peak memory of a run's processes, row "<dag>|<run>|<component>|<try>"
    "run_resources": {"d": {"max_versions": 1}},
    # control plane of a running pipeline (stop requests, who stopped), row "<pipeline>"
    "control": {"c": {"max_versions": 1}},
}


def event_row_key(event_id: str) -> bytes:
    """Row key of an event: a 2-hex salt spreads sequential ids over regions; deterministic."""
    salt = hashlib.md5(event_id.encode(), usedforsecurity=False).hexdigest()[:2]
    return f"{salt}|{event_id}".encode()


def dead_letter_row_key(topic: str, partition: int, offset: int) -> bytes:
    return f"{topic}|{partition:04d}|{offset:020d}".encode()


def minute_bucket(event_time_ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(event_time_ms / 1000, tz=dt.UTC).strftime("%Y%m%d%H%M")


def batch_qualifier(batch_label: str) -> bytes:
    """Column of one micro-batch's (or batch window's) contribution to an aggregate row."""
    return f"m:{batch_label}".encode()


def encode(event: dict[str, Any]) -> bytes:
    """Serialise an event for Kafka (compact JSON, UTF-8)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


class ContractError(ValueError):
    """A record does not satisfy its contract; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_PY_TYPES = {"long": (int,), "double": (int, float)}


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def validate(raw: bytes, kind: EventKind, record_ts_ms: int, key: str | None = None) -> dict[str, Any]:
    """The contract check of one record; returns the event or raises ContractError(reason).

    The streaming and batch jobs run it on every record (``spark_jobs.hbase_sink``); producers can
    run it to refuse bad records early. ``key``: the Kafka key the record came with; it must be
    the event's entity (``key_field``), which keeps each entity's events, and every copy of an
    event, in one Kafka partition (per-entity order, per-partition dedupe).
    """
    if len(raw) > kind.max_bytes:
        raise ContractError("oversize")
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ContractError("invalid_json") from None
    if not isinstance(event, dict):
        raise ContractError("invalid_json")
    extra = sorted(set(event) - set(kind.all_fields))
    if extra:
        raise ContractError(f"unexpected_field:{extra[0]}")
    for name, typ in kind.all_fields.items():
        value = event.get(name)
        if value is None:
            raise ContractError(f"missing_field:{name}")
        # Like Spark's JSON reader, string fields take any JSON value as its text; numeric
        # fields must be JSON numbers (booleans and quoted numbers are wrong types).
        if typ == "string":
            continue
        if isinstance(value, bool) or not isinstance(value, _PY_TYPES[typ]):
            raise ContractError(f"wrong_type:{name}")
        if typ == "long" and not -(2**63) <= value < 2**63:
            raise ContractError(f"wrong_type:{name}")
    if event["schema"] != kind.name or event["v"] != kind.version:
        raise ContractError("unknown_schema_version")
    for name in ("event_id", kind.key_field):
        if not _as_text(event[name]).strip():
            raise ContractError(f"empty_key:{name}")
    for name, (lo, hi) in kind.ranges.items():
        if not lo <= float(event[name]) <= hi:
            raise ContractError(f"out_of_range:{name}")
    if event["event_time"] > record_ts_ms + MAX_FUTURE_MS:
        raise ContractError("event_time_in_future")
    if event["event_time"] < record_ts_ms - MAX_PAST_MS:
        raise ContractError("event_time_too_old")
    if key is not None and key != _as_text(event[kind.key_field]):
        raise ContractError(f"key_mismatch:{kind.key_field}")
    return event

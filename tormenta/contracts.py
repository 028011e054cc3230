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
import importlib
import importlib.util
import json
import math
import os
import pkgutil
import re
from dataclasses import replace
from types import ModuleType
from typing import Any

from tormenta.eventkind import ENVELOPE, EventKind  # noqa: F401  (ENVELOPE: part of this module's API)

# Event times are checked against the Kafka record timestamp (set when the producer sent it),
# never against the wall clock of the job: a replayed batch must classify exactly as before.
MAX_FUTURE_MS = 5 * 60 * 1000  # 5 minutes of clock skew
MAX_PAST_MS = 7 * 24 * 3600 * 1000  # a week of buffering at the source


# --- the kinds -------------------------------------------------------------------------------
# Each folder of the ``kinds`` package is one event kind: its contract, rules and source client
# (``kinds/__init__.py``). The core finds them by name, as Airflow finds its providers: nothing in
# ``tormenta/`` imports a kind, so adding one touches its folder only.
KINDS_PACKAGE = "kinds"


def discover(package: str = KINDS_PACKAGE) -> dict[str, EventKind]:
    """Every kind folder of ``package`` (its ``contract.KIND``), by contract name, in folder order."""
    found: dict[str, EventKind] = {}
    root = importlib.import_module(package)
    if not hasattr(root, "__path__"):  # e.g. a script's folder on sys.path with a kinds.py in it
        raise ImportError(f"{package!r} is {root.__file__}, a module, not the kinds package")
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        folder = f"{package}.{info.name}"
        kind = getattr(importlib.import_module(f"{folder}.contract"), "KIND", None)
        if not isinstance(kind, EventKind):
            raise ImportError(f"{folder}.contract must define KIND, an EventKind")
        if kind.name in found:
            raise ImportError(f"two kinds named {kind.name!r}: {found[kind.name].package} and {folder}")
        if not kind.topic.startswith(f"{DEFAULT_NAMESPACE}."):
            raise ImportError(f"{folder}: the topic {kind.topic!r} must start with '{DEFAULT_NAMESPACE}.'")
        found[kind.name] = replace(kind, package=folder)
    if not found:
        raise ImportError(f"no event kind in the {package!r} package")
    return found


def kind_part(kind: EventKind, part: str) -> ModuleType | None:
    """The ``part`` module of a kind's folder ("rules", "source", "dag"), None if it has none."""
    name = f"{kind.package}.{part}"
    return importlib.import_module(name) if importlib.util.find_spec(name) else None


DEFAULT_NAMESPACE = "tormenta"
KINDS: dict[str, EventKind] = discover()
TOPIC_PARTITIONS = 4  # >= the cores Spark gets locally; keys (pages, devices) spread over them
BY_TOPIC: dict[str, EventKind] = {k.topic: k for k in KINDS.values()}


# --- namespaces ----------------------------------------------------------------------------
# A namespace prefixes a deployment's topics and tables (tests and benchmarks use their own). The
# one rule, for the DAGs' Params (a JSON-schema pattern), the jobs' arguments and every name below.
NAMESPACE_PATTERN = r"^[a-z][a-z0-9_]{0,19}$"


def check_namespace(namespace: str) -> str:
    """``namespace`` if it follows :data:`NAMESPACE_PATTERN`, else ValueError saying the rule."""
    if not isinstance(namespace, str) or not re.fullmatch(NAMESPACE_PATTERN, namespace):
        raise ValueError(f"invalid namespace {namespace!r}: a lower-case letter, then up to 19 lower-case "
                         "letters, digits or '_'")  # fmt: skip
    return namespace


def topic_for(kind: EventKind, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Topic of ``kind`` in a namespace: "tormenta.social.comments" -> "<namespace>.social.comments"."""
    check_namespace(namespace)
    return kind.topic if namespace == DEFAULT_NAMESPACE else f"{namespace}.{kind.topic.split('.', 1)[1]}"


def topics_for(namespace: str = DEFAULT_NAMESPACE) -> dict[str, EventKind]:
    """topic -> kind for every contract in a namespace (what the streaming job subscribes to)."""
    return {topic_for(k, namespace): k for k in KINDS.values()}

# --- HBase tables --------------------------------------------------------------------------
# Physical name = "<namespace>_<logical>".


def query_name(namespace: str = DEFAULT_NAMESPACE, mode: str = "always-on") -> str:
    """The namespace's streaming query: its checkpoint folder and its metrics rows' prefix.
    The micro-batch DAG and ``tormenta stream`` (by hand) run the same query. Always-on and
    triggered runs share it (one checkpoint: a triggered run takes up where the last run stopped);
    the real-time mode runs another plan, so it has a query (checkpoint, metrics) of its own."""
    check_namespace(namespace)
    return f"{namespace}_realtime" if mode == "real-time" else f"{namespace}_microbatch"


def table_name(logical: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    if logical not in TABLES:
        raise KeyError(f"unknown table {logical!r}")
    check_namespace(namespace)
    return f"{namespace}_{logical}"


def _ttl_seconds(env: str, default_days: int) -> int:
    days = float(os.environ.get(env, str(default_days)))
    if days <= 0:
        raise ValueError(f"{env} must be > 0 days")
    return int(days * 86400)


# Operational tables expire by cell time (their cells carry wall-clock or Kafka time, never a
# batch sequence): dead letters after TORMENTA_DEAD_LETTER_TTL_DAYS (90), per-batch metrics and
# resource usage after TORMENTA_OPS_TTL_DAYS (30). Applied when a table is created.
DEAD_LETTER_TTL_S = _ttl_seconds("TORMENTA_DEAD_LETTER_TTL_DAYS", 90)
OPS_TTL_S = _ttl_seconds("TORMENTA_OPS_TTL_DAYS", 30)

# logical name -> {family: options}. Families are short; "d" data, "m" per-batch contributions, "s" state.
# The namespace's common tables; each kind adds its events table and its own (``EventKind.tables``).
COMMON_TABLES: dict[str, dict[str, dict[str, Any]]] = {
    # reference data for enrichment (seeded by `tormenta seed`)
    "ref_politicians": {"d": {"max_versions": 1}},
    "ref_devices": {"d": {"max_versions": 1}},
    "ref_zones": {"d": {"max_versions": 1}},
    # poison input, row "<topic>|<partition:04d>|<offset:020d>"
    "dead_letters": {"d": {"max_versions": 1, "time_to_live": DEAD_LETTER_TTL_S}},
    # one row per micro-batch, row "<query>|<batch_id:012d>"
    "microbatch_metrics": {"d": {"max_versions": 1, "time_to_live": OPS_TTL_S}},
    # one row per batch-archetype run, row "<window label>|<run id>": d:doc = JSON record
    "batch_runs": {"d": {"max_versions": 1}},
    # CPU-seconds and peak memory of a run's processes, row "<dag>|<run>|<component>|<try>"
    "run_resources": {"d": {"max_versions": 1, "time_to_live": OPS_TTL_S}},
    # control plane of a running pipeline (stop requests, who stopped), row "<pipeline>"
    "control": {"c": {"max_versions": 1}},
}


def _all_tables() -> dict[str, dict[str, dict[str, Any]]]:
    tables = dict(COMMON_TABLES)
    for kind in KINDS.values():
        # events, row key "<salt>|<event_id>"; d:batch = micro-batch (or window) that stored it first
        for logical, families in {kind.events_table: {"d": {"max_versions": 1}}, **kind.tables}.items():
            if logical in tables:
                raise ImportError(f"{kind.package}: table {logical!r} is declared twice")
            tables[logical] = families
    return tables


TABLES = _all_tables()


def key_part(value: str) -> str:
    """One component of a composite row key, escaped so that no two different records share a
    key: '%' -> '%25', '|' -> '%7C' ('|' separates components). The Spark SQL writers apply the
    same escaping (``spark_jobs.validation.key_part``)."""
    return value.replace("%", "%25").replace("|", "%7C")


def row_key(*parts: str) -> bytes:
    """A composite row key: escaped components joined by '|'."""
    return "|".join(key_part(str(p)) for p in parts).encode()


def split_row_key(key: bytes | str) -> list[str]:
    """The components of a composite row key (the inverse of :func:`row_key`)."""
    text = key.decode() if isinstance(key, bytes) else key
    return [p.replace("%7C", "|").replace("%25", "%") for p in text.split("|")]


def event_row_key(event_id: str) -> bytes:
    """Row key of an event: a 2-hex salt spreads sequential ids over regions; deterministic."""
    salt = hashlib.md5(event_id.encode(), usedforsecurity=False).hexdigest()[:2]
    return row_key(salt, event_id)


def dead_letter_row_key(topic: str, partition: int, offset: int) -> bytes:
    return f"{topic}|{partition:04d}|{offset:020d}".encode()


def minute_bucket(event_time_ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(event_time_ms / 1000, tz=dt.UTC).strftime("%Y%m%d%H%M")


def batch_qualifier(batch_label: str) -> bytes:
    """Column of one micro-batch's (or batch window's) contribution to an aggregate row."""
    return f"m:{batch_label}".encode()


def encode(event: dict[str, Any]) -> bytes:
    """Serialise an event for Kafka (compact JSON, UTF-8; orjson: ~6x faster than json.dumps)."""
    import orjson

    return orjson.dumps(event)


class ContractError(ValueError):
    """A record does not satisfy its contract; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# The order of the checks is the contract: the first that fails names the dead-letter reason.
# ``spark_jobs/validation.py`` runs the same checks as Spark SQL column expressions (the jobs' path);
# this Python copy serves producers and is the reference a test holds the SQL to.
MAX_JSON_DEPTH = 16  # events are flat objects; deeper nesting is refused as invalid JSON
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f|]")  # not allowed in identifiers (row keys)


def _json_defect(raw: bytes) -> str | None:
    """What is wrong with the bytes as one JSON object (None: nothing); mirrors StrictJson.java."""
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return "invalid_utf8"
    if text.startswith("\ufeff"):
        return "invalid_json"

    def no_duplicates(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                raise _Duplicate()
            seen[k] = v
        return seen

    try:
        value = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=_refuse_constant)
    except _Duplicate:
        return "duplicate_key"
    except (ValueError, RecursionError):
        return "invalid_json"
    if not isinstance(value, dict) or _depth(value) > MAX_JSON_DEPTH:
        return "invalid_json"
    for s in _strings(value):
        if "\x00" in s:
            return "nul_character"
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800-style escape
            return "invalid_unicode"
    return None


class _Duplicate(ValueError):
    pass


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _type_ok(value: Any, typ: str) -> bool:
    """Exact JSON types: a string field takes only a JSON string, a long only an integer literal
    that fits 64 bits, a double any JSON number."""
    if typ == "string":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if typ == "long":
        return isinstance(value, int) and -(2**63) <= value < 2**63
    return isinstance(value, int | float)


def _finite_in(value: float | int, lo: float, hi: float) -> bool:
    try:
        f = float(value)
    except OverflowError:  # an integer literal beyond a double
        return False
    return math.isfinite(f) and lo <= f <= hi


def validate(raw: bytes | None, kind: EventKind, record_ts_ms: int, key: str | None = None) -> dict[str, Any]:
    """The contract check of one record; returns the event or raises ContractError(reason).

    ``key``: the Kafka key the record came with; it must be the event's entity (``key_field``),
    which keeps each entity's events, and every copy of an event, in one Kafka partition.
    The jobs run the same checks in Spark SQL (``spark_jobs.validation``), in the same order.
    """
    if raw is None:
        raise ContractError("null_value")
    if len(raw) > kind.max_bytes:
        raise ContractError("oversize")
    defect = _json_defect(raw)
    if defect:
        raise ContractError(defect)
    event = json.loads(raw)
    extra = sorted(set(event) - set(kind.all_fields))
    if extra:
        raise ContractError(f"unexpected_field:{extra[0]}")
    for name, typ in kind.all_fields.items():
        value = event.get(name)
        if value is None:
            raise ContractError(f"missing_field:{name}")
        if not _type_ok(value, typ):
            raise ContractError(f"wrong_type:{name}")
    if event["schema"] != kind.name or event["v"] != kind.version:
        raise ContractError("unknown_schema_version")
    for name in kind.id_fields:
        if _CONTROL.search(event[name]):
            raise ContractError(f"bad_id:{name}")
    for name in ("event_id", kind.key_field):
        if not event[name].strip():
            raise ContractError(f"empty_key:{name}")
    for name, typ in kind.fields.items():
        lo, hi = kind.ranges.get(name, (-math.inf, math.inf))
        if typ == "double" and not _finite_in(event[name], lo, hi):
            raise ContractError(f"out_of_range:{name}")
    if event["event_time"] > record_ts_ms + MAX_FUTURE_MS:
        raise ContractError("event_time_in_future")
    if event["event_time"] < record_ts_ms - MAX_PAST_MS:
        raise ContractError("event_time_too_old")
    if key is not None and key != event[kind.key_field]:
        raise ContractError(f"key_mismatch:{kind.key_field}")
    return event

"""The batch archetype as Airflow runs it: the window, the landing folder, the run record, and
the comparison of its aggregates with the micro-batch path's.

A window is ``[start, end)`` in whole UTC minutes; its label ``w<yyyyMMddHHmm>-<yyyyMMddHHmm>``
is the batch label of every cell it writes, and its sequence (start in epoch ms) orders its
geo state after earlier windows. Results go to their own namespace (``tormenta_batch`` by
default) so both paths' numbers sit side by side.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tormenta.contracts import DEFAULT_NAMESPACE, NAMESPACE_PATTERN, split_row_key, table_name

DAG_ID = "tormenta_batch"
RESULTS_NAMESPACE = "tormenta_batch"  # the batch results' default namespace, beside the stream's
ISO_MINUTE_PATTERN = r"^$|^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:00)?(Z|[+-]\d{2}:\d{2})?$"
MAX_WINDOW = dt.timedelta(days=31)


def params() -> dict[str, Any]:
    """The batch DAG's trigger form (the micro-batch one: ``tormenta.microbatch.params``)."""
    from airflow.sdk import Param

    return {
        "window_start": Param("", type="string", pattern=ISO_MINUTE_PATTERN, title="Window start (UTC)",
                              description="ISO 8601 on a whole minute, e.g. 2026-11-26T14:00Z. Empty: the "
                                          "previous UTC day."),
        "window_end": Param("", type="string", pattern=ISO_MINUTE_PATTERN, title="Window end (UTC)",
                            description="Exclusive. Empty together with the start: the previous UTC day."),
        "parts": Param(4, type="integer", minimum=1, maximum=256, title="Parallel parts",
                       description="The big file is split into this many parts, processed in parallel on "
                                   "the cores the tormenta_spark pool gives the job."),
        "source": Param("kafka", type="string", enum=["kafka", "file"], title="Source",
                        description="kafka: the window's records from the Kafka archive. file: a source "
                                    "client writes the window's big file (social comments)."),
        "file_events": Param(100_000, type="integer", minimum=1, maximum=50_000_000, title="Events in the file",
                             description="Only for source = file."),
        "source_namespace": Param(DEFAULT_NAMESPACE, type="string", pattern=NAMESPACE_PATTERN,
                                  title="Source namespace", description="Whose topics are read."),
        "agree_wait_minutes": Param(10, type="integer", minimum=0, maximum=240, title="Agreement: wait for the "
                                    "micro-batch path", description="The agree task compares the window's aggregates "
                                    "with the micro-batch path's once that path has processed past the window's "
                                    "end; it waits at most this long for it (skipped, with the reason, if it "
                                    "does not catch up)."),
        "namespace": Param(RESULTS_NAMESPACE, type="string", pattern=NAMESPACE_PATTERN, title="Results namespace",
                           description="HBase tables the batch results go to (next to the micro-batch ones)."),
    }  # fmt: skip


@dataclass(frozen=True)
class Window:
    start_ms: int
    end_ms: int

    @property
    def label(self) -> str:
        return f"w{_fmt(self.start_ms)}-{_fmt(self.end_ms)}"

    @property
    def seq(self) -> int:
        return self.start_ms

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label, "seq": self.seq,
                "start": _iso(self.start_ms), "end": _iso(self.end_ms)}  # fmt: skip


def _fmt(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y%m%d%H%M")


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat()


def _parse(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if value.second or value.microsecond:
        raise ValueError(f"{text!r}: windows start and end on whole minutes")
    return value


def resolve_window(start: str | None, end: str | None, run_date: dt.datetime) -> Window:
    """The window of a run: both Params given, or (neither) the UTC day before ``run_date``."""
    start, end = (start or "").strip(), (end or "").strip()
    if bool(start) != bool(end):
        raise ValueError("give both window_start and window_end, or neither (the previous UTC day)")
    if start:
        s, e = _parse(start), _parse(end)
    else:
        day = run_date.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        s, e = day - dt.timedelta(days=1), day
    if e <= s:
        raise ValueError(f"window end {e.isoformat()} is not after its start {s.isoformat()}")
    if e - s > MAX_WINDOW:
        raise ValueError(f"window of {e - s} is longer than {MAX_WINDOW}")
    return Window(int(s.timestamp() * 1000), int(e.timestamp() * 1000))


def paths(home: Path, window: Window, run_id: str, landing_root: str | None = None,
          warehouse_root: str | None = None) -> dict[str, str]:  # fmt: skip
    """Landing (raw, as received) and warehouse (Parquet) folders of a window. The roots may be
    URIs of a shared file system (the executors write there); the source client's file and the
    run reports stay local to the task (``home``)."""
    from tormenta.settings import join

    safe_run = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    landing = landing_root or str(home / "landing")
    warehouse = warehouse_root or str(home / "warehouse")
    return {
        "source_file": str(home / "landing" / window.label / "source" / "events.jsonl"),
        "raw_dir": join(landing, window.label, "raw"),
        "parquet_dir": join(warehouse, window.label, "parquet"),
        "land_report": str(home / "runs" / window.label / safe_run / "land.json"),
        "process_report": str(home / "runs" / window.label / safe_run / "process.json"),
    }


def run_record(window: Window, run_id: str, land: dict, process: dict, parts: int, source: str) -> dict[str, Any]:
    """What a batch run stores about itself (start, end, rows, duration, freshness)."""
    started = process.get("started_at") or 0
    written = process.get("written_at") or 0
    return {
        "mode": "batch",
        "run_id": run_id,
        "window": window.as_dict(),
        "source": source,
        "parts": parts,
        "landed_rows": land.get("rows"),
        "read": process.get("read"),
        "good": process.get("good"),
        "dead": process.get("dead"),
        "dead_by_reason": process.get("dead_by_reason"),
        "expectations": process.get("expectations") or {},
        "latency_ms": process.get("latency_ms"),
        "latency_hist": process.get("latency_hist"),
        "min_event_time": process.get("min_event_time"),
        "max_event_time": process.get("max_event_time"),
        "process_started_at": started,
        "process_written_at": written,
        "land_seconds": land.get("seconds"),
        "process_seconds": process.get("seconds"),
        "recorded_at": int(time.time() * 1000),
    }


def run_index_key(run_id: str) -> bytes:
    """``run|<run id>``: the run's record again, so a page finds it with one get, however many
    windows the table holds (its main row, ``<window label>|<run id>``, sorts windows in order)."""
    return f"run|{run_id}".encode()


def store_run_record(conn, namespace: str, record: dict[str, Any]) -> bytes:
    key = f"{record['window']['label']}|{record['run_id']}".encode()
    cells = {b"d:doc": json.dumps(record, sort_keys=True).encode()}
    table = conn.table(table_name("batch_runs", namespace))
    table.put(key, cells)
    table.put(run_index_key(record["run_id"]), cells)
    return key


def window_rows(conn, namespace: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The ``<window label>|<run id>`` rows of ``<namespace>_batch_runs`` (not the run index or
    the processed files ledger)."""
    return [(k, c) for k, c in conn.table(table_name("batch_runs", namespace)).scan(row_start=b"w", row_stop=b"x")]


# --- comparing the two paths -------------------------------------------------------------------
def social_minute_totals(conn, namespace: str, start_ms: int, end_ms: int) -> dict[str, dict[str, float]]:
    """Per "<page>|<minute>" row: the sum of every batch's contribution (comments, mentions,
    sentiment), for the minutes inside ``[start_ms, end_ms)``."""
    lo, hi = _fmt(start_ms), _fmt(end_ms)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"comments": 0, "mentions": 0, "sentiment_sum": 0.0})
    for key, cells in conn.table(table_name("social_minute", namespace)).scan():
        page, minute = split_row_key(key)
        if not lo <= minute < hi:
            continue
        acc = totals[f"{page}|{minute}"]
        for value in cells.values():
            doc = json.loads(value)
            acc["comments"] += doc["comments"]
            acc["mentions"] += doc["mentions"]
            acc["sentiment_sum"] += doc["sentiment_sum"]
    return {k: {**v, "sentiment_sum": round(v["sentiment_sum"], 4)} for k, v in totals.items()}


def first_social_minute(conn, namespace: str, since_ms: int) -> int | None:
    """Start (ms) of the earliest minute at or after ``since_ms`` that holds social aggregates in
    the namespace, or None: where a window over a just-started pipeline's events can begin."""
    since = _fmt(since_ms)
    minutes = [m for m in (split_row_key(key)[1] for key, _ in
                           conn.table(table_name("social_minute", namespace)).scan(filter=b"KeyOnlyFilter()"))
               if m >= since]  # fmt: skip
    if not minutes:
        return None
    return int(dt.datetime.strptime(min(minutes), "%Y%m%d%H%M").replace(tzinfo=dt.UTC).timestamp() * 1000)


def compare_social(conn, micro_ns: str, batch_ns: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    """Do both paths agree on the social aggregates of a window? Lists every differing row."""
    a = social_minute_totals(conn, micro_ns, start_ms, end_ms)
    b = social_minute_totals(conn, batch_ns, start_ms, end_ms)
    diffs = {k: {"micro_batch": a.get(k), "batch": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    return {
        "rows": len(set(a) | set(b)),
        "comments": {"micro_batch": sum(v["comments"] for v in a.values()),
                     "batch": sum(v["comments"] for v in b.values())},
        "agree": (not diffs) if (a or b) else None,  # None: nothing to compare in this window
        "differences": diffs,
    }  # fmt: skip


# --- a batch that starts when its file lands ------------------------------------------------------
# A source client that finishes a window's big file announces it on FILES_TOPIC; the batch DAG is
# scheduled on FILE_ASSET, whose watcher (the Kafka provider's AwaitMessageTrigger, in Airflow's
# triggerer) turns each announcement into an asset event, and so into a run of exactly that file.
FILES_TOPIC = "tormenta.batch.files"
FILE_ASSET = "tormenta_batch_file"
FILES_CONN_ID = "kafka_batch_files"  # the watcher's consumer: its group remembers what it has seen
FILE_ID_PATTERN = r"^[0-9a-f]{64}$"  # the file's sha256


def files_topic(replication: int = -1, config: dict[str, str] | None = None):
    """The announcements topic: one partition (announcements keep their order), kept 7 days."""
    from tormenta.kafka import TopicSpec

    return TopicSpec(FILES_TOPIC, 1, replication, {"retention.ms": str(7 * 24 * 3600 * 1000), **(config or {})})


def incoming_dir(home: Path) -> Path:
    """Where source clients put the big files they announce (the batch reads nothing else)."""
    return home / "landing" / "incoming"


def file_announcement(path: Path, window: Window, events: int, source_namespace: str) -> dict[str, Any]:
    """What a source client says when a big file is complete: where, which window, how big, its id."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"file": str(path), "id": digest.hexdigest(), "bytes": path.stat().st_size, "events": events,
            "window_start": _iso(window.start_ms), "window_end": _iso(window.end_ms),
            "source_namespace": source_namespace}  # fmt: skip


def announce(bootstrap: str, announcement: dict[str, Any], timeout: float = 30.0) -> None:
    """Send one announcement, acknowledged by every in-sync replica (or raise)."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    errors: list[Any] = []
    producer.produce(FILES_TOPIC, key=announcement["id"].encode(), value=json.dumps(announcement, sort_keys=True).encode(),
                     on_delivery=lambda err, _msg: errors.append(err) if err else None)  # fmt: skip
    if producer.flush(timeout) or errors:
        raise KafkaException(errors[0] if errors else f"announcement not acknowledged within {timeout:.0f}s")


def parse_announcement(payload: str, home: Path) -> dict[str, Any]:
    """An announcement as the batch trusts it: JSON with a sha256 id, a window, and a file that
    exists inside ``incoming_dir(home)`` with the announced size; ValueError says what is wrong."""
    import re

    try:
        doc = json.loads(payload)
    except (TypeError, ValueError):
        raise ValueError(f"the announcement is not JSON: {str(payload)[:200]!r}") from None
    if not isinstance(doc, dict):
        raise ValueError("the announcement is not a JSON object")
    missing = [k for k in ("file", "id", "bytes", "window_start", "window_end") if k not in doc]
    if missing:
        raise ValueError(f"the announcement lacks {', '.join(missing)}")
    if not re.fullmatch(FILE_ID_PATTERN, str(doc["id"])):
        raise ValueError("the announcement's id is not a sha256 (64 lower-case hex digits)")
    window = resolve_window(str(doc["window_start"]), str(doc["window_end"]), dt.datetime.now(dt.UTC))
    root = incoming_dir(home).resolve()
    path = Path(str(doc["file"])).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"the announced file {doc['file']!r} is not inside {root}")
    if not path.is_file():
        raise ValueError(f"the announced file {doc['file']!r} does not exist")
    if path.stat().st_size != doc["bytes"]:
        raise ValueError(f"the announced file has {path.stat().st_size} bytes, the announcement says {doc['bytes']}")
    ns = doc.get("source_namespace", DEFAULT_NAMESPACE)
    if not isinstance(ns, str) or not re.fullmatch(NAMESPACE_PATTERN, ns):
        raise ValueError(f"the announcement's source_namespace {ns!r} is not a namespace")
    return {**doc, "file": str(path), "source_namespace": ns, "window": window.as_dict()}


def file_key(file_id: str) -> bytes:
    """The row of ``<namespace>_batch_runs`` that says which run processed a file."""
    return f"file|{file_id}".encode()


def processed_by(conn, namespace: str, file_id: str) -> str | None:
    """The run that processed the announced file, or None."""
    table = table_name("batch_runs", namespace)
    if table.encode() not in conn.tables():
        return None
    return (conn.table(table).row(file_key(file_id), columns=[b"d:run"]).get(b"d:run") or b"").decode() or None


def mark_processed(conn, namespace: str, file_id: str, run_id: str, path: str) -> None:
    conn.table(table_name("batch_runs", namespace)).put(file_key(file_id), {b"d:run": run_id.encode(),
                                                                           b"d:file": path.encode()})  # fmt: skip


@dataclass
class Pick:
    """What a run started by announcements processes: ``file`` (None: nothing new), the other new
    files (``later``: announced again, each gets a run of its own), the files already processed
    (``done``: "<file> by <run>") and the refused announcements (``refused``: why)."""

    file: dict[str, Any] | None
    later: list[dict[str, Any]]
    done: list[str]
    refused: list[str]


def pick_announced(payloads: list[str], home: Path, processed_by_id) -> Pick:
    """The first announced file no run has processed (``processed_by_id(id)``: a run id or None)."""
    new: list[dict[str, Any]] = []
    done: list[str] = []
    refused: list[str] = []
    seen: set[str] = set()
    for payload in payloads:
        try:
            doc = parse_announcement(payload, home)
        except ValueError as exc:
            refused.append(str(exc))
            continue
        if doc["id"] in seen:
            continue  # announced twice before this run started: one file
        seen.add(doc["id"])
        run = processed_by_id(doc["id"])
        if run:
            done.append(f"{doc['file']} by run {run}")
        else:
            new.append(doc)
    strip = lambda d: {k: v for k, v in d.items() if k != "window"}  # noqa: E731 - as announced
    return Pick(new[0] if new else None, [strip(d) for d in new[1:]], done, refused)

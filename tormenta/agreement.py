"""Do the batch window and the micro-batch path agree? Every aggregate both compute, row by row.

The batch DAG's ``agree`` task runs :func:`check` after a window is stored. Each kind's folder
says how its aggregates compare (``kinds/<kind>/agree.py``: ``checks(scope) -> list[Tally]``);
this module holds what they share: the window, the rows of each side, and the edge rule.

**The window's edges.** The batch lands a window's records by their *Kafka* timestamp (the
producer's send time); the micro-batch files each event under its *event* time. An event made at
10:05:59.998 and sent at 10:06:00.001 is in the micro-batch's minute 10:05 and in the batch
window that starts at 10:06. So a row may differ by the events whose event time lies within
:data:`EDGE_MS` of a window edge (the row's *slack*), and only by those. A geo device's first
position in the window has no earlier position in the batch (the batch reads its own state, the
micro-batch the position just before), so its zone event and its trip's distance are edge rows too.

**History.** Both paths drop a copy of an event they stored before (``duplicate_event_id``), each
against its own namespace. A source read again from its start (a page feed re-scraped by a new
run) sends events the micro-batch path stored in an earlier run, before the window: it drops
those copies, and the batch window, which never saw the first ones, counts them. A row off by
exactly those copies (:meth:`Scope.history`) is explained by history, not a disagreement.

Any other difference is a real disagreement and fails the task.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from tormenta.contracts import KINDS, batch_qualifier, event_row_key, kind_part, split_row_key, table_name

EDGE_MS = 5_000  # send time - event time stays well under this (one producer flush + clock reads)
EXAMPLES = 20  # differing rows kept per aggregate for the page and the task log
SCAN_BATCH = 5_000


def close(a: float | None, b: float | None, tol: float = 1e-6) -> bool:
    """Equal sums, up to the rounding both paths store them with."""
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=tol)


@dataclass
class Tally:
    """One aggregate's rows: how many were compared, agreed, differed by the edges only, by the
    micro-batch path's history only, or differed."""

    aggregate: str
    compared: int = 0
    same: int = 0
    edge: int = 0
    differ: int = 0
    history: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: str, verdict: str, micro: Any, batch: Any) -> None:
        if verdict not in ("same", "edge", "history", "differ"):
            raise ValueError(f"verdict {verdict!r}")
        self.compared += 1
        setattr(self, verdict, getattr(self, verdict) + 1)
        if verdict == "differ" and len(self.examples) < EXAMPLES:
            self.examples.append({"row": row, "micro_batch": micro, "batch": batch})


def counted(row: str, tally: Tally, micro: int, batch: int, slack: int, *, same: bool | None = None,
            history: int = 0) -> None:  # fmt: skip
    """A count-like row: the same (``same`` says so, or equal counts), off by at most the row's edge
    events (``slack``), short on the micro-batch side by the copies it dropped as events it had
    stored before the window (``history``, with the same slack), or different."""
    if same if same is not None else micro == batch:
        tally.add(row, "same", micro, batch)
    elif slack > 0 and abs(micro - batch) <= slack:
        tally.add(row, "edge", micro, batch)
    elif history > 0 and abs(micro + history - batch) <= slack:
        tally.add(row, "history", micro, batch)
    else:
        tally.add(row, "differ", micro, batch)


@dataclass
class Scope:
    """What a kind's checks read: the two namespaces' tables over one window.

    ``micro_ns``: the micro-batch path's namespace (the batch's ``source_namespace``);
    ``batch_ns``: where the batch stored the window, each aggregate row's ``m:<label>`` cell."""

    conn: Any
    micro_ns: str
    batch_ns: str
    start_ms: int
    end_ms: int
    label: str
    _events: dict[str, list[dict[str, str]]] = field(default_factory=dict, repr=False)

    def inside(self, ms: int) -> bool:
        return self.start_ms <= ms < self.end_ms

    def near(self, ms: int) -> bool:
        """Within EDGE_MS of an edge: the event may be on either side of it for the batch."""
        return abs(ms - self.start_ms) < EDGE_MS or abs(ms - self.end_ms) < EDGE_MS

    def micro_events(self, logical: str, fields: Iterable[str]) -> list[dict[str, str]]:
        """The micro-batch path's stored events (``logical`` events table) whose event time is in
        the window or within EDGE_MS of it, each as {field: text, "event_time": int}. Read once."""
        if logical not in self._events:
            columns = [f"d:{f}".encode() for f in ("event_time", *fields)]
            lo, hi = self.start_ms - EDGE_MS, self.end_ms + EDGE_MS
            out = []
            for _, cells in self.conn.table(table_name(logical, self.micro_ns)).scan(columns=columns,
                                                                                     batch_size=SCAN_BATCH):
                t = int(cells.get(b"d:event_time", b"0"))
                if lo <= t < hi:
                    doc = {c.decode()[2:]: v.decode() for c, v in cells.items()}
                    out.append({**doc, "event_time": t})
            self._events[logical] = out
        return self._events[logical]

    def history(self, kind) -> list[dict[str, Any]]:
        """The events of ``kind`` (each as its JSON document) whose copies the micro-batch path
        dropped as ``duplicate_event_id`` with an event time in the window or within EDGE_MS of
        it, because it had stored the event before the window (its stored copy's event time is
        earlier than the window's start by more than EDGE_MS). Read once per kind."""
        key = f"history:{kind.name}"
        if key not in self._events:
            lo, hi = self.start_ms - EDGE_MS, self.end_ms + EDGE_MS
            stored = self.conn.table(table_name(kind.events_table, self.micro_ns))
            out = []
            for _, cells in self.conn.table(table_name("dead_letters", self.micro_ns)).scan(
                    columns=[b"d:reason", b"d:value"], batch_size=SCAN_BATCH):  # fmt: skip
                if cells.get(b"d:reason") != b"duplicate_event_id":
                    continue
                try:
                    doc = json.loads(cells.get(b"d:value", b""))
                    t, event_id = int(doc["event_time"]), str(doc["event_id"])
                except (ValueError, KeyError, TypeError):
                    continue
                if doc.get("schema") != kind.name or not lo <= t < hi:
                    continue
                first = stored.row(event_row_key(event_id), columns=[b"d:event_time"]).get(b"d:event_time")
                if first is not None and int(first) < self.start_ms - EDGE_MS:
                    out.append({**doc, "event_time": t})
            self._events[key] = out
        return self._events[key]

    def micro_totals(self, logical: str, keep: Callable[[str], bool] | None = None) -> dict[str, list[bytes]]:
        """Every contribution (``m:*`` cells, one per micro-batch) of each aggregate row."""
        out = {}
        for key, cells in self.conn.table(table_name(logical, self.micro_ns)).scan(batch_size=SCAN_BATCH):
            row = key.decode()
            if keep is None or keep(row):
                out[row] = [v for c, v in cells.items() if c.startswith(b"m:")]
        return out

    def batch_cells(self, logical: str, keep: Callable[[str], bool] | None = None) -> dict[str, bytes]:
        """This window's contribution (its ``m:<label>`` cell) to each aggregate row of the batch."""
        column = batch_qualifier(self.label)
        out = {}
        for key, cells in self.conn.table(table_name(logical, self.batch_ns)).scan(columns=[column],
                                                                                   batch_size=SCAN_BATCH):
            row = key.decode()
            if column in cells and (keep is None or keep(row)):
                out[row] = cells[column]
        return out

    def rows(self, logical: str, ns: str, keep: Callable[[str], bool]) -> dict[str, dict[bytes, bytes]]:
        """Whole rows of a table of one side (``ns``) whose key ``keep`` accepts."""
        return {key.decode(): cells for key, cells in self.conn.table(table_name(logical, ns)).scan(batch_size=SCAN_BATCH)
                if keep(key.decode())}  # fmt: skip


def near_counts(scope: Scope, events: list[dict[str, Any]], key: Callable[[dict[str, Any]], str]) -> Counter:
    """Per row key: the micro-batch events near an edge (each row's slack)."""
    return Counter(key(e) for e in events if scope.near(e["event_time"]))


def first_positions(scope: Scope, events: list[dict[str, Any]], by: str) -> dict[str, int]:
    """Event time of each ``by`` value's first event inside the window."""
    first: dict[str, int] = {}
    for e in events:
        if scope.inside(e["event_time"]) and e["event_time"] < first.get(e[by], 1 << 62):
            first[e[by]] = e["event_time"]
    return first


def check(conn, micro_ns: str, batch_ns: str, start_ms: int, end_ms: int, label: str) -> dict[str, Any]:
    """Every kind's aggregates for the window: per aggregate the rows compared, the same, those
    off by the window's edges only, and those that differ (with examples). ``agree``: True when
    none differ, None when there was nothing to compare."""
    scope = Scope(conn, micro_ns, batch_ns, start_ms, end_ms, label)
    tallies: list[Tally] = []
    for kind in KINDS.values():
        part = kind_part(kind, "agree")
        if part is not None:
            tallies += part.checks(scope)
    compared = sum(t.compared for t in tallies)
    differ = sum(t.differ for t in tallies)
    return {
        "micro_namespace": micro_ns, "batch_namespace": batch_ns, "label": label,
        "start_ms": start_ms, "end_ms": end_ms, "edge_ms": EDGE_MS,
        "compared": compared, "same": sum(t.same for t in tallies), "edge": sum(t.edge for t in tallies),
        "history": sum(t.history for t in tallies), "differ": differ, "agree": (differ == 0) if compared else None,
        "aggregates": [asdict(t) for t in tallies],
    }  # fmt: skip


def caught_up(endpoint, micro_ns: str, end_ms: int, timeout_s: float,
              unread: Callable[[dict[str, Any] | None], int | None], stall_s: float = 90.0,
              say: Callable[[str], None] = print, sleep: Callable[[float], None] | None = None,
              clock: Callable[[], float] | None = None) -> str | None:
    """Wait until the micro-batch path has processed every record of the window: ``unread(progress)``
    (``microbatch.unread_before`` at ``end_ms``, per Kafka partition) is 0 for the newest micro-batch.
    None once it is; else why not: its query stored nothing new for ``stall_s`` (stopped, or never
    ran on the namespace) or still has records of the window to read after ``timeout_s``."""
    import time

    from tormenta import microbatch

    sleep, clock = sleep or time.sleep, clock or time.monotonic
    start = moved = clock()
    seen: Any = object()
    while True:
        with endpoint.session() as conn:
            progress = microbatch.latest_progress(conn, micro_ns)
        left = unread(progress) if progress is not None else None
        if left == 0:
            return None
        key = (progress or {}).get("key")
        if key != seen:
            seen, moved = key, clock()
        now = clock()
        where = ("stored no micro-batch" if left is None
                 else f"has {left:,} records of the window (before its end) still to read")  # fmt: skip
        if now - moved >= stall_s:
            return (f"the micro-batch query of namespace {micro_ns!r} {where} and stored nothing new for "
                    f"{now - moved:.0f}s: it is not running, so it cannot be compared")  # fmt: skip
        if now - start >= timeout_s:
            return f"the micro-batch query of namespace {micro_ns!r} {where} after {timeout_s:.0f}s of waiting"
        say(f"the micro-batch query {where}: waiting")
        sleep(5)


def lines(result: dict[str, Any]) -> list[str]:
    """The result as a person reads it in the task log."""
    out = [f"{'aggregate':<18} {'compared':>9} {'same':>9} {'edge':>6} {'history':>8} {'differ':>7}"]
    for t in result["aggregates"]:
        out.append(f"{t['aggregate']:<18} {t['compared']:>9} {t['same']:>9} {t['edge']:>6} {t.get('history', 0):>8} "
                   f"{t['differ']:>7}")  # fmt: skip
        out += [f"  differs: {json.dumps(x, sort_keys=True)}" for x in t["examples"]]
    verdict = {True: "agree", False: "DIFFER", None: "nothing to compare"}[result["agree"]]
    out.append(f"{'all':<18} {result['compared']:>9} {result['same']:>9} {result['edge']:>6} "
               f"{result.get('history', 0):>8} {result['differ']:>7}  -> {verdict}")  # fmt: skip
    return out


def store(conn, namespace: str, label: str, run_id: str, result: dict[str, Any]) -> None:
    """Beside the batch run's record (``<namespace>_batch_runs``, column ``d:agree``, on the
    record's row and on its run index row)."""
    from tormenta.batch import run_index_key

    cells = {b"d:agree": json.dumps(result, sort_keys=True).encode()}
    table = conn.table(table_name("batch_runs", namespace))
    table.put(f"{label}|{run_id}".encode(), cells)
    table.put(run_index_key(run_id), cells)


def minute_of(row: str) -> str:
    return split_row_key(row)[-1]


def sum_docs(values: Iterable[bytes], fields: tuple[str, ...]) -> dict[str, float]:
    acc: dict[str, float] = defaultdict(float)
    for v in values:
        doc = json.loads(v)
        for f in fields:
            acc[f] += doc.get(f) or 0
    return {f: acc[f] for f in fields}

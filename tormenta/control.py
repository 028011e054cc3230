"""Control plane of a long-running pipeline run, kept in HBase (``<namespace>_control``).

Every part of a micro-batch run reads it: the ingestor tasks, the supervisor task and the
Spark driver, wherever they run (HBase is the one store they all reach). Rows:

    "<pipeline>"             c:active  = run id of the run that owns the pipeline now
    "<pipeline>|<run id>"    c:phase   = running | stopping | draining | stopped
                             c:stop    = why a stop was requested (ingestors stop on it)
                             c:stream_stop = set once every ingestor has stopped: the
                                         streaming job drains what is in Kafka, then stops
                             c:stopped:<component> = JSON report of a component that stopped
                             c:failed:<component> = JSON report of its last failed try; kept
                                         until a later try ends cleanly, so a retry that
                                         finds the run stopping cannot turn it into success
                             c:storm:<asked at, ms> = JSON storm on demand (page, factor, from,
                                         until): the running ingestors multiply that page's rate

    "namespace"              c:role    = stream | batch: what writes this namespace's tables

Rows are scoped by run id and never deleted, so a stale stop request of an old run can never
stop a new one, and the history of every stop stays readable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tormenta.contracts import DEFAULT_NAMESPACE, table_name
from tormenta.hbase import Endpoint

PHASES = ("running", "stopping", "draining", "stopped")
ROLES = ("stream", "batch")


def storms_of(cells: dict[bytes, bytes]) -> list[dict[str, Any]]:
    """The storms of a run's control row, oldest first."""
    return [json.loads(v) for k, v in sorted(cells.items()) if k.startswith(b"c:storm:")]


def active_storm(storms: list[dict[str, Any]], now_ms: int) -> dict[str, Any] | None:
    """The storm blowing at ``now_ms``: the newest one asked whose time span holds it."""
    return next((s for s in reversed(storms) if s["from_ms"] <= now_ms < s["until_ms"]), None)


def run_storms(conn, namespace: str, run_id: str, pipeline: str = "microbatch") -> list[dict[str, Any]]:
    """The storms of a run, read on an open connection (the comparison page)."""
    table = table_name("control", namespace)
    if table.encode() not in conn.tables():
        return []
    return storms_of(conn.table(table).row(f"{pipeline}|{run_id}".encode()))


class StopStalled(RuntimeError):
    """A requested stop cannot complete (e.g. the run's tasks ended before they could stop)."""


class RoleError(RuntimeError):
    """The namespace holds the other path's results; writing there would corrupt them."""


@dataclass(frozen=True)
class ControlPlane:
    endpoint: Endpoint  # tormenta.hbase: an HBaseEndpoint, or the in-memory one of the tests
    namespace: str = DEFAULT_NAMESPACE
    pipeline: str = "microbatch"

    @property
    def table(self) -> str:
        return table_name("control", self.namespace)

    def _row(self, run_id: str) -> bytes:
        return f"{self.pipeline}|{run_id}".encode()

    @contextmanager
    def _table(self):
        with self.endpoint.session() as conn:
            yield conn.table(self.table)

    def _put(self, row: bytes, cells: dict[bytes, bytes]) -> None:
        with self._table() as table:
            table.put(row, cells)

    def _delete(self, row: bytes, columns: list[bytes]) -> None:
        with self._table() as table:
            table.delete(row, columns=columns)

    def _get(self, row: bytes) -> dict[bytes, bytes]:
        with self._table() as table:
            return table.row(row)

    # --- run lifecycle ------------------------------------------------------------------
    def begin(self, run_id: str) -> None:
        """Mark ``run_id`` as the run owning the pipeline (called by the run's prepare task)."""
        now = str(int(time.time() * 1000)).encode()
        self._put(self._row(run_id), {b"c:phase": b"running", b"c:started": now})
        self._put(self.pipeline.encode(), {b"c:active": run_id.encode(), b"c:since": now})

    def active_run(self) -> str | None:
        cells = self._get(self.pipeline.encode())
        return cells[b"c:active"].decode() if b"c:active" in cells else None

    def state(self, run_id: str) -> dict[str, Any]:
        cells = self._get(self._row(run_id))
        def reports(prefix: bytes) -> dict[str, Any]:  # component -> JSON report, from c:<kind>:<component>
            return {k[len(prefix):].decode(): json.loads(v) for k, v in cells.items() if k.startswith(prefix)}

        stopped, failed = reports(b"c:stopped:"), reports(b"c:failed:")
        return {
            "run_id": run_id,
            "phase": cells.get(b"c:phase", b"").decode() or None,
            "stop": cells.get(b"c:stop", b"").decode() or None,
            "stream_stop": cells.get(b"c:stream_stop") == b"1",
            "stopped": stopped,
            "failed": failed,
            "storms": storms_of(cells),
        }

    # --- storm on demand ------------------------------------------------------------------------
    def add_storm(self, run_id: str, page: str, factor: int, minutes: float, now_ms: int | None = None) -> dict:
        """A storm on the running run: ``page``'s comments ×``factor`` for ``minutes``, from now.
        The run's ingestors read it from here (``tormenta.providers.ingestor``)."""
        if not 2 <= factor <= 1000 or not 0 < minutes <= 24 * 60:
            raise ValueError("a storm multiplies by 2 to 1000, for up to a day")
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        doc = {"page": page, "factor": int(factor), "from_ms": now_ms, "until_ms": now_ms + int(minutes * 60_000)}
        self._put(self._row(run_id), {f"c:storm:{now_ms:013d}".encode(): json.dumps(doc, sort_keys=True).encode()})
        return doc

    # --- stop protocol: ingestors first, then the streaming job drains and stops ------------
    def request_stop(self, run_id: str, reason: str) -> bool:
        """Ask the run to stop. Returns False when a stop was already requested (kept as is)."""
        if self.stop_reason(run_id):
            return False
        self._put(self._row(run_id), {b"c:stop": reason.encode()[:500], b"c:phase": b"stopping"})
        return True

    def stop_active(self, reason: str) -> str | None:
        """Ask the namespace's running pipeline to stop in order: the stop DAG and ``tormenta stack
        down`` both start here. Returns the run asked, or None when none is running."""
        run_id = self.active_run()
        if run_id is None or self.state(run_id)["phase"] == "stopped":
            return None
        self.request_stop(run_id, reason)
        return run_id

    def wait_stopped(self, run_id: str, timeout: float | None = None, poll_s: float = 5.0,
                     stalled: Callable[[dict], str | None] | None = None,
                     progress: Callable[[dict], None] | None = None) -> dict:  # fmt: skip
        """Wait for the run's phase ``stopped`` and return its state (the last one seen after
        ``timeout`` s). ``stalled(state)`` names why the stop cannot come: StopStalled at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (state := self.state(run_id))["phase"] != "stopped":
            reason = stalled(state) if stalled else None
            if reason:
                raise StopStalled(f"the stop of {run_id} cannot complete: {reason}")
            if deadline is not None and time.monotonic() >= deadline:
                break
            if progress:
                progress(state)
            time.sleep(poll_s)
        return state

    def stop_reason(self, run_id: str) -> str | None:
        return self._get(self._row(run_id)).get(b"c:stop", b"").decode() or None

    def request_stream_stop(self, run_id: str) -> None:
        self._put(self._row(run_id), {b"c:stream_stop": b"1", b"c:phase": b"draining"})

    def stream_stop_requested(self, run_id: str) -> bool:
        return self._get(self._row(run_id)).get(b"c:stream_stop") == b"1"

    def mark_stopped(self, run_id: str, component: str, report: dict[str, Any] | None = None) -> None:
        doc = {"at": int(time.time() * 1000), **(report or {})}
        self._put(self._row(run_id), {f"c:stopped:{component}".encode(): json.dumps(doc, sort_keys=True).encode()})

    def mark_failed(self, run_id: str, component: str, report: dict[str, Any]) -> None:
        """Record a component's failed try; it stays until ``clear_failure`` (a clean end)."""
        doc = {"at": int(time.time() * 1000), **report}
        self._put(self._row(run_id), {f"c:failed:{component}".encode(): json.dumps(doc, sort_keys=True).encode()})

    def clear_failure(self, run_id: str, component: str) -> None:
        self._delete(self._row(run_id), [f"c:failed:{component}".encode()])

    def finish(self, run_id: str) -> None:
        self._put(self._row(run_id), {b"c:phase": b"stopped", b"c:finished": str(int(time.time() * 1000)).encode()})

    # --- what writes the namespace -------------------------------------------------------------
    def claim_role(self, role: str) -> str:
        """Mark the namespace as written by ``role`` on first use; refuse the other role later.

        Stream and batch results must never share tables: batch cells carry window timestamps
        (~1.7e12) and stream geo state carries batch sequence numbers, so a batch write into a
        stream namespace would freeze the stream's state for good.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        held = self._get(b"namespace").get(b"c:role", b"").decode()
        if held and held != role:
            raise RoleError(f"namespace {self.namespace!r} holds {held} results; the {role} path cannot write "
                            f"there (use another namespace)")  # fmt: skip
        if not held:
            self._put(b"namespace", {b"c:role": role.encode()})
        return role


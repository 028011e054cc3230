"""The micro-batch metrics store, ``<namespace>_microbatch_metrics``: one row per batch, written by
the jobs, read by the supervisor, ``tormenta status`` and the comparison page.

* ``<query>|<seq>``: every batch of the namespace's query (``d:result``: our ``BatchResult``;
  ``d:progress``: Spark's own progress of that batch, from the query listener);
* ``run|<run id>|<seq>``: the same ``d:result`` again for a batch of an Airflow run, so a run's
  batches are one prefix scan.

``seq`` is zero-padded, so keys sort in batch order and the newest batch is one reverse scan.
"""

from __future__ import annotations

import json
from typing import Any

from tormenta.contracts import table_name
from tormenta.hbase import Connection, put_rows

TABLE = "microbatch_metrics"  # logical name (``tormenta.contracts.TABLES``); the batch archetype's runs: batch_runs
SEQ_DIGITS = 15


def row_key(query: str, seq: int) -> bytes:
    return f"{query}|{seq:0{SEQ_DIGITS}d}".encode()


def run_prefix(run_id: str) -> bytes:
    return f"run|{run_id}|".encode()


def run_row_key(run_id: str, seq: int) -> bytes:
    return run_prefix(run_id) + f"{seq:0{SEQ_DIGITS}d}".encode()


def write_result(conn: Connection, namespace: str, query: str, seq: int, result: dict[str, Any],
                 run_id: str | None = None) -> None:  # fmt: skip
    """Store one batch's result (and its run copy). Retry: overwrites that batch's rows."""
    cells = {b"d:result": json.dumps(result, sort_keys=True).encode()}
    rows = [(row_key(query, seq), cells, None)]
    if run_id:
        rows.append((run_row_key(run_id, seq), cells, None))
    put_rows(conn, table_name(TABLE, namespace), rows)


def write_progress(conn: Connection, namespace: str, query: str, seq: int, progress: dict[str, Any]) -> None:
    put_rows(conn, table_name(TABLE, namespace),
             [(row_key(query, seq), {b"d:progress": json.dumps(progress).encode()}, None)])  # fmt: skip


def latest(conn: Connection, namespace: str, query: str) -> dict[str, Any] | None:
    """The newest batch of ``query``: ``{"key", "result"?, "progress"?}``, or None (none yet, or
    no metrics table)."""
    table = table_name(TABLE, namespace)
    if table.encode() not in conn.tables():
        return None
    prefix = f"{query}|".encode()
    for key, cells in conn.table(table).scan(row_start=prefix + b"\xff", row_stop=prefix, reverse=True, limit=1):
        out: dict[str, Any] = {"key": key.decode()}
        if b"d:result" in cells:
            out["result"] = json.loads(cells[b"d:result"])
        if b"d:progress" in cells:
            out["progress"] = json.loads(cells[b"d:progress"])
        return out
    return None


def run_results(conn: Connection, namespace: str, run_id: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The results of a run's batches, in batch order (at most ``limit``)."""
    table = conn.table(table_name(TABLE, namespace))
    return [json.loads(cells[b"d:result"])
            for _key, cells in table.scan(row_prefix=run_prefix(run_id), columns=[b"d:result"], limit=limit)]  # fmt: skip

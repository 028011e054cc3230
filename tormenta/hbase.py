"""HBase access through the Thrift server (happybase): connect, ensure tables, batched writes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HBaseEndpoint:
    host: str = "127.0.0.1"
    port: int = 9090
    transport: str = "buffered"
    protocol: str = "binary"
    timeout_ms: int = 30000

    def connect(self):
        """Open a happybase connection (import kept local: Spark executors import this lazily)."""
        import happybase

        return happybase.Connection(
            self.host,
            self.port,
            timeout=self.timeout_ms,
            transport=self.transport,
            protocol=self.protocol,
        )


def ensure_table(conn, name: str, families: Mapping[str, dict]) -> bool:
    """Create ``name`` with ``families`` unless it exists. Returns True when created.

    Retry: safe. Two callers racing may both try to create; the loser's "already exists" error is
    swallowed after re-checking that the table is there.
    """
    if name.encode() in conn.tables():
        return False
    try:
        conn.create_table(name, dict(families))
        log.info("created HBase table %s", name)
        return True
    except Exception:
        if name.encode() in conn.tables():
            return False
        raise


def put_rows(
    conn,
    table: str,
    rows: Iterable[tuple[bytes, dict[bytes, bytes], int | None]],
    batch_size: int = 1000,
) -> int:
    """Write ``(row_key, {b'cf:col': value}, timestamp_ms)`` rows with batched mutations.

    Retry: idempotent. Row keys are deterministic and every cell carries an explicit timestamp,
    so writing the same rows again overwrites the same cells instead of adding versions or rows.
    """
    tbl = conn.table(table)
    count = 0
    # Group by timestamp: happybase batches take one timestamp each.
    batches: dict[int | None, object] = {}
    try:
        for key, cells, ts in rows:
            batch = batches.get(ts)
            if batch is None:
                batch = batches[ts] = tbl.batch(timestamp=ts, batch_size=batch_size)
            batch.put(key, cells)
            count += 1
            if len(batches) > 256:  # bound memory when every row has its own timestamp
                for b in batches.values():
                    b.send()
                batches.clear()
    finally:
        for b in batches.values():
            b.send()
    return count

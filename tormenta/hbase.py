"""HBase endpoints, and access through the Thrift server (happybase): connect, ensure tables, puts.

The data path of the jobs writes with the native client from the JVM (``spark_jobs.jvm_sink``,
through ZooKeeper to the region servers); happybase serves the control plane, reference
seeding, table creation and the reads behind the UI.

Everything in Python that stores or reads rows (the control plane, the metrics and resource
rows, the reference data, the result readers) goes through the three small interfaces below:
an endpoint's ``session()`` gives a :class:`Connection`, whose ``table()`` gives a
:class:`Table`. They are the subset of happybase the project uses, so happybase serves them in
production and one in-memory implementation (``tests/fakes.py``) serves the unit tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

Cells = dict[bytes, bytes]


class Batch(Protocol):
    def put(self, row: bytes, data: Cells) -> None: ...
    def send(self) -> None: ...


class Table(Protocol):
    def put(self, row: bytes, data: Cells, timestamp: int | None = None) -> None: ...
    def row(self, row: bytes, columns: list[bytes] | None = None) -> Cells: ...
    def delete(self, row: bytes, columns: list[bytes] | None = None) -> None: ...
    def scan(self, row_start: bytes | None = None, row_stop: bytes | None = None, row_prefix: bytes | None = None,
             columns: list[bytes] | None = None, limit: int | None = None, reverse: bool = False,
             filter: bytes | None = None, batch_size: int = 1000) -> Iterator[tuple[bytes, Cells]]: ...  # fmt: skip
    def batch(self, timestamp: int | None = None) -> Batch: ...


class Connection(Protocol):
    def tables(self) -> list[bytes]: ...
    def table(self, name: str) -> Table: ...
    def create_table(self, name: str, families: dict[str, dict[str, Any]]) -> None: ...
    def delete_table(self, name: str, disable: bool = False) -> None: ...


class Endpoint(Protocol):
    def session(self) -> AbstractContextManager[Connection]: ...


@dataclass(frozen=True)
class HBaseEndpoint:
    """Where HBase answers: the Thrift gateway (host, port) and, for the native client of the
    JVM sink, the ZooKeeper quorum (``host:port[,host:port...]``) and znode parent."""

    host: str = "127.0.0.1"
    port: int = 9090
    transport: str = "buffered"
    protocol: str = "binary"
    timeout_ms: int = 30000
    zookeeper_quorum: str = "127.0.0.1:2181"
    znode_parent: str = "/hbase"

    def native_settings(self) -> str:
        """The HBase client configuration of the JVM sink, one ``key=value`` per line."""
        for part in self.zookeeper_quorum.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit() or any(c in host for c in "=\n\r"):
                raise ValueError(f"ZooKeeper quorum entry {part!r} is not host:port")
        if not self.znode_parent.startswith("/") or any(c in self.znode_parent for c in "=\n\r"):
            raise ValueError(f"znode parent {self.znode_parent!r} is not a ZooKeeper path")
        return "\n".join([
            f"hbase.zookeeper.quorum={self.zookeeper_quorum}",
            f"zookeeper.znode.parent={self.znode_parent}",
            # Fail a batch within about a minute when HBase is gone (the default retries for ~20 min);
            # Airflow's retry of the job then replays the batch, idempotently.
            "hbase.client.retries.number=10",
            "hbase.client.pause=200",
            f"hbase.client.operation.timeout={max(self.timeout_ms, 60000)}",
            f"hbase.rpc.timeout={self.timeout_ms}",
        ])  # fmt: skip

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

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """``with endpoint.session() as conn``: a happybase connection, closed on the way out."""
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()


def ensure_table(conn: Connection, name: str, families: Mapping[str, dict]) -> bool:
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
    conn: Connection,
    table: str,
    rows: Iterable[tuple[bytes, dict[bytes, bytes], int | None]],
    batch_size: int = 1000,
) -> int:
    """Write ``(row_key, {b'cf:col': value}, timestamp_ms)`` rows, ``batch_size`` rows per Thrift call.

    (happybase's own ``batch_size`` counts cells, not rows: it is not used.)
    Retry: idempotent. Row keys are deterministic and every cell carries an explicit timestamp,
    so writing the same rows again overwrites the same cells instead of adding versions or rows.
    """
    tbl = conn.table(table)
    count = 0
    # Group by timestamp: happybase batches take one timestamp each. ts -> (batch, rows in it)
    batches: dict[int | None, list] = {}
    try:
        for key, cells, ts in rows:
            entry = batches.get(ts)
            if entry is None:
                entry = batches[ts] = [tbl.batch(timestamp=ts), 0]
            entry[0].put(key, cells)
            entry[1] += 1
            count += 1
            if entry[1] >= batch_size:
                entry[0].send()
                entry[1] = 0
            if len(batches) > 256:  # bound memory when every row has its own timestamp
                for b, _ in batches.values():
                    b.send()
                batches.clear()
    finally:
        for b, _ in batches.values():
            b.send()
    return count

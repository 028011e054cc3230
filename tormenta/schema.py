"""A namespace's HBase tables: created from ``contracts.TABLES`` (idempotent) and dropped.

The jobs, ``tormenta prepare`` and the micro-batch DAG create them through
``tormenta.reference`` (tables, then the reference rows); tests and benchmarks drop theirs."""

from __future__ import annotations

from tormenta.contracts import DEFAULT_NAMESPACE, TABLES, table_name
from tormenta.hbase import ensure_table


def ensure_tables(conn, namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    """Create every table of ``namespace`` that is missing; returns the ones created now."""
    return [name for logical, families in TABLES.items()
            if ensure_table(conn, name := table_name(logical, namespace), families)]  # fmt: skip


def drop_namespace(conn, namespace: str) -> int:
    """Delete every Tormenta table of ``namespace`` (tests and benchmarks clean up after them:
    a standalone HBase with hundreds of leftover regions runs out of heap). Returns how many."""
    existing = set(conn.tables())
    dropped = 0
    for logical in TABLES:
        name = table_name(logical, namespace)
        if name.encode() in existing:
            conn.delete_table(name, disable=True)
            dropped += 1
    return dropped

"""HBase standalone through the Thrift server with happybase: create, put, get, scan, delete."""

import pytest

from tormenta.hbase import HBaseEndpoint, ensure_table, put_rows

pytestmark = pytest.mark.integration


def test_table_lifecycle(hbase, unique):
    name = f"test_crud_{unique}"
    assert ensure_table(hbase, name, {"d": {"max_versions": 1}}) is True
    assert ensure_table(hbase, name, {"d": {"max_versions": 1}}) is False
    try:
        table = hbase.table(name)
        table.put(b"row-1", {b"d:a": b"1", b"d:b": b"2"})
        table.put(b"row-2", {b"d:a": b"3"})
        assert table.row(b"row-1") == {b"d:a": b"1", b"d:b": b"2"}
        assert [k for k, _ in table.scan(row_prefix=b"row-")] == [b"row-1", b"row-2"]
        table.delete(b"row-1", columns=[b"d:b"])
        assert table.row(b"row-1") == {b"d:a": b"1"}
        table.delete(b"row-2")
        assert table.row(b"row-2") == {}
    finally:
        hbase.delete_table(name, disable=True)
    assert name.encode() not in hbase.tables()


def test_batched_rewrite_is_byte_identical(hbase, unique):
    """Writing the same rows twice with explicit timestamps leaves HBase unchanged."""
    name = f"test_idem_{unique}"
    ensure_table(hbase, name, {"d": {"max_versions": 3}})
    try:
        rows = [(f"k{i:04d}".encode(), {b"d:v": str(i).encode()}, 1_700_000_000_000 + i) for i in range(500)]
        put_rows(hbase, name, rows, batch_size=100)
        first = list(hbase.table(name).scan(include_timestamp=True))
        put_rows(hbase, name, rows, batch_size=100)
        second = list(hbase.table(name).scan(include_timestamp=True))
        assert len(first) == 500
        assert first == second
        versions = hbase.table(name).cells(b"k0001", b"d:v", versions=3, include_timestamp=True)
        assert versions == [(b"1", 1_700_000_000_001)]  # one version: the rewrite did not add one
    finally:
        hbase.delete_table(name, disable=True)


def test_operational_tables_expire_by_cell_time(hbase, unique):
    """Dead letters, batch metrics and resource usage have a TTL: disk stays bounded."""
    import time

    from tormenta.contracts import DEAD_LETTER_TTL_S, OPS_TTL_S, TABLES, table_name

    ns = f"t{unique}"
    try:
        for logical, ttl in (("dead_letters", DEAD_LETTER_TTL_S), ("microbatch_metrics", OPS_TTL_S),
                             ("run_resources", OPS_TTL_S)):  # fmt: skip
            ensure_table(hbase, table_name(logical, ns), TABLES[logical])
            assert hbase.table(table_name(logical, ns)).families()[b"d"]["time_to_live"] == ttl
        table = hbase.table(table_name("dead_letters", ns))
        now_ms = int(time.time() * 1000)
        table.put(b"old", {b"d:reason": b"x"}, timestamp=now_ms - (DEAD_LETTER_TTL_S + 86400) * 1000)
        table.put(b"new", {b"d:reason": b"x"}, timestamp=now_ms - (DEAD_LETTER_TTL_S - 86400) * 1000)
        assert [k for k, _ in table.scan()] == [b"new"]
    finally:
        for logical in ("dead_letters", "microbatch_metrics", "run_resources"):
            if table_name(logical, ns).encode() in hbase.tables():
                hbase.delete_table(table_name(logical, ns), disable=True)


def test_a_session_closes_its_connection_also_when_the_block_fails(stack):
    with pytest.raises(RuntimeError, match="in the block"):
        with HBaseEndpoint(stack.bind_host, stack.thrift_port).session() as conn:
            assert isinstance(conn.tables(), list)  # open and answering inside the block
            raise RuntimeError("in the block")
    assert not conn.transport.is_open()

"""put_rows and ensure_table against the shared in-memory HBase (tests/fakes.py)."""

import pytest

from tests.fakes import MemoryHBase
from tormenta.hbase import ensure_table, put_rows

pytestmark = pytest.mark.unit


def _hbase(name: str = "t") -> MemoryHBase:
    hbase = MemoryHBase()
    hbase.create_table(name, {"d": {}})
    return hbase


def _rows(n):
    return [(f"k{i}".encode(), {b"d:v": str(i).encode()}, 1000 + i % 3) for i in range(n)]


def test_writing_the_same_rows_twice_changes_nothing():
    hbase = _hbase()
    assert put_rows(hbase, "t", _rows(50)) == 50
    snapshot = {k: {c: dict(v) for c, v in cells.items()} for k, cells in hbase.data["t"].items()}
    put_rows(hbase, "t", _rows(50))
    assert hbase.data["t"] == snapshot  # same cells, same timestamps: no new version, no new row
    assert len(snapshot) == 50


def test_every_row_is_flushed_even_with_many_timestamps():
    hbase = _hbase()
    rows = [(f"k{i}".encode(), {b"d:v": b"x"}, i) for i in range(1000)]
    assert put_rows(hbase, "t", rows) == 1000
    assert len(list(hbase.table("t").scan())) == 1000


def test_batches_count_rows_not_cells():
    """happybase's own batch_size counts cells; put_rows sends batch_size *rows* per call."""
    hbase = _hbase()
    rows = [(f"k{i}".encode(), {f"d:c{j}".encode(): b"x" for j in range(14)}, 7) for i in range(2500)]
    assert put_rows(hbase, "t", rows, batch_size=1000) == 2500
    assert hbase.sends == [1000, 1000, 500]
    assert len(list(hbase.table("t").scan())) == 2500


def test_ensure_table_is_idempotent():
    hbase = MemoryHBase()
    assert ensure_table(hbase, "t", {"d": {}}) is True
    assert ensure_table(hbase, "t", {"d": {}}) is False
    assert hbase.tables() == [b"t"]


def test_a_racing_creator_loses_quietly_when_the_table_is_there():
    class Racing(MemoryHBase):
        def create_table(self, name, families):
            super().create_table(name, families)  # the other caller's create lands first...
            raise RuntimeError("AlreadyExists")  # ...and ours fails

    assert ensure_table(Racing(), "t", {"d": {}}) is False

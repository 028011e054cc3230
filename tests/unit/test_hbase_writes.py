"""put_rows against an in-memory fake of happybase's table/batch API (pure logic only)."""

import pytest

from tormenta.hbase import ensure_table, put_rows

pytestmark = pytest.mark.unit


class FakeBatch:
    def __init__(self, store, timestamp):
        self.store, self.timestamp, self.pending = store, timestamp, []

    def put(self, key, cells):
        self.pending.append((key, cells))

    sends: list[int] = []  # rows per send, over every batch (reset by each test that reads it)

    def send(self):
        if self.pending:
            FakeBatch.sends.append(len(self.pending))
        for key, cells in self.pending:
            for col, val in cells.items():
                self.store.setdefault(key, {})[(col, self.timestamp)] = val
        self.pending = []


class FakeTable:
    def __init__(self, store):
        self.store = store

    def batch(self, timestamp=None, batch_size=None):
        return FakeBatch(self.store, timestamp)


class FakeConn:
    def __init__(self):
        self.store, self.created = {}, []

    def table(self, name):
        return FakeTable(self.store)

    def tables(self):
        return [n.encode() for n in self.created]

    def create_table(self, name, families):
        self.created.append(name)


def _rows(n):
    return [(f"k{i}".encode(), {b"d:v": str(i).encode()}, 1000 + i % 3) for i in range(n)]


def test_writing_the_same_rows_twice_changes_nothing():
    conn = FakeConn()
    assert put_rows(conn, "t", _rows(50)) == 50
    snapshot = {k: dict(v) for k, v in conn.store.items()}
    put_rows(conn, "t", _rows(50))
    assert conn.store == snapshot
    assert len(conn.store) == 50


def test_every_row_is_flushed_even_with_many_timestamps():
    conn = FakeConn()
    rows = [(f"k{i}".encode(), {b"d:v": b"x"}, i) for i in range(1000)]
    assert put_rows(conn, "t", rows) == 1000
    assert len(conn.store) == 1000


def test_batches_count_rows_not_cells():
    """happybase's own batch_size counts cells; put_rows sends batch_size *rows* per call."""
    conn = FakeConn()
    FakeBatch.sends = []
    rows = [(f"k{i}".encode(), {f"d:c{j}".encode(): b"x" for j in range(14)}, 7) for i in range(2500)]
    assert put_rows(conn, "t", rows, batch_size=1000) == 2500
    assert FakeBatch.sends == [1000, 1000, 500]
    assert len(conn.store) == 2500


def test_ensure_table_is_idempotent():
    conn = FakeConn()
    assert ensure_table(conn, "t", {"d": {}}) is True
    assert ensure_table(conn, "t", {"d": {}}) is False
    assert conn.created == ["t"]

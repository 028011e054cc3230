"""One in-memory HBase for the unit tests: the ``Endpoint`` / ``Connection`` / ``Table``
interfaces of ``tormenta.hbase``, with HBase's semantics where the code relies on them.

* rows sorted by key (scans, ``row_start`` inclusive, ``row_stop`` exclusive, ``reverse``
  walks down from ``row_start``), a prefix, a column filter and a limit;
* cell versions by timestamp: a put at an existing (row, column, timestamp) overwrites it, and a
  read returns the newest version (puts without a timestamp get an increasing clock);
* ``filter=b"KeyOnlyFilter()"`` empties the values, as HBase's filter does;
* a table must exist before it is used, as on a real cluster; ``delete_table`` needs
  ``disable=True``;
* ``sends`` records how many rows each batch send carried.

Pure logic only: every feature that stores rows is also tested against the real HBase.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager


class TableNotFound(KeyError):
    pass


class MemoryTable:
    def __init__(self, hbase: MemoryHBase, name: str) -> None:
        self.hbase, self.name = hbase, name

    @property
    def _rows(self) -> dict[bytes, dict[bytes, dict[int, bytes]]]:
        try:
            return self.hbase.data[self.name]
        except KeyError:
            raise TableNotFound(self.name) from None

    def put(self, row: bytes, data: dict[bytes, bytes], timestamp: int | None = None) -> None:
        ts = next(self.hbase.clock) if timestamp is None else timestamp
        families = self.hbase.families[self.name]
        cells = self._rows.setdefault(row, {})
        for column, value in data.items():
            if column.split(b":", 1)[0].decode() not in families:
                raise ValueError(f"{self.name}: no column family for {column!r}")
            cells.setdefault(column, {})[ts] = value

    def _newest(self, cells, columns) -> dict[bytes, bytes]:
        out = {}
        for column, versions in cells.items():
            if versions and (not columns or column in columns or column.split(b":")[0] in columns):
                out[column] = versions[max(versions)]
        return out

    def row(self, row: bytes, columns: list[bytes] | None = None) -> dict[bytes, bytes]:
        return self._newest(self._rows.get(row, {}), columns)

    def delete(self, row: bytes, columns: list[bytes] | None = None) -> None:
        cells = self._rows.get(row)
        if cells is None:
            return
        for column in list(cells) if columns is None else columns:
            cells.pop(column, None)
        if not cells:
            del self._rows[row]

    def scan(self, row_start=None, row_stop=None, row_prefix=None, columns=None, limit=None, reverse=False,
             filter=None, batch_size=1000):  # noqa: A002 (happybase's name)
        if filter not in (None, b"KeyOnlyFilter()"):
            raise NotImplementedError(f"the fake knows KeyOnlyFilter only, not {filter!r}")
        keys = sorted(self._rows, reverse=reverse)
        out = 0
        for key in keys:
            if row_prefix is not None and not key.startswith(row_prefix):
                continue
            if not reverse and ((row_start is not None and key < row_start) or (row_stop is not None and key >= row_stop)):
                continue
            if reverse and ((row_start is not None and key > row_start) or (row_stop is not None and key <= row_stop)):
                continue
            cells = self._newest(self._rows[key], columns)
            if not cells:
                continue
            if filter is not None:
                cells = dict.fromkeys(cells, b"")
            yield key, cells
            out += 1
            if limit is not None and out >= limit:
                return

    def batch(self, timestamp: int | None = None, batch_size: int | None = None) -> MemoryBatch:
        return MemoryBatch(self, timestamp)


class MemoryBatch:
    def __init__(self, table: MemoryTable, timestamp: int | None) -> None:
        self.table, self.timestamp, self.pending = table, timestamp, []

    def put(self, row: bytes, data: dict[bytes, bytes]) -> None:
        self.pending.append((row, data))

    def send(self) -> None:
        if self.pending:
            self.table.hbase.sends.append(len(self.pending))
        for row, data in self.pending:
            self.table.put(row, data, timestamp=self.timestamp)
        self.pending = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.send()


class MemoryHBase:
    """An endpoint (``session()``) and its connection at once: every session sees the same data."""

    def __init__(self) -> None:
        self.data: dict[str, dict] = {}
        self.families: dict[str, dict] = {}
        self.clock = itertools.count(1_000_000_000_000)
        self.sends: list[int] = []
        self.sessions = 0

    @contextmanager
    def session(self):
        self.sessions += 1
        yield self

    def tables(self) -> list[bytes]:
        return sorted(name.encode() for name in self.data)

    def table(self, name: str) -> MemoryTable:
        return MemoryTable(self, name)

    def create_table(self, name: str, families: dict[str, dict]) -> None:
        if name in self.data:
            raise ValueError(f"table {name} already exists")
        self.data[name], self.families[name] = {}, dict(families)

    def delete_table(self, name: str, disable: bool = False) -> None:
        if not disable:
            raise ValueError(f"table {name} is enabled: delete_table(name, disable=True)")
        del self.data[name], self.families[name]

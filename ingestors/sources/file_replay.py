"""Replay recorded events from a JSON-lines or CSV file, so recorded data can be streamed."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tormenta.contracts import EventKind


class FileReplay:
    """Reads events in file order. CSV columns are the contract's field names (typed on read)."""

    def __init__(self, path: str | Path, kind: EventKind, name: str = "file-replay") -> None:
        self.path = Path(path)
        self.kind = kind
        self.name = name
        self._fh = self.path.open(newline="", encoding="utf-8")
        self._csv = csv.DictReader(self._fh) if self.path.suffix.lower() == ".csv" else None
        self.line = 0

    def _typed(self, row: dict[str, str]) -> dict[str, Any]:
        casts = {"long": int, "double": float, "string": str}
        out: dict[str, Any] = {}
        for key, value in row.items():
            typ = self.kind.all_fields.get(key)
            out[key] = casts[typ](value) if typ and value not in ("", None) else value
        return out

    def poll(self, max_records: int) -> list[dict[str, Any]] | None:
        out: list[dict[str, Any]] = []
        while len(out) < max_records:
            if self._csv is not None:
                row = next(self._csv, None)
                if row is None:
                    break
                self.line += 1
                out.append(self._typed(row))
            else:
                raw = self._fh.readline()
                if not raw:
                    break
                self.line += 1
                if raw.strip():
                    try:
                        out.append(json.loads(raw))
                    except ValueError as exc:
                        raise ValueError(f"{self.path}:{self.line}: invalid JSON: {exc}") from None
        if not out:
            return None
        for event in out:
            event.setdefault("source", self.name)
        return out

    def close(self) -> None:
        self._fh.close()

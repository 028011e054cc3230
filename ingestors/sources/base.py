"""The interface every source client implements."""

from __future__ import annotations

from typing import Any, Protocol

from tormenta.contracts import EventKind


class SourceClient(Protocol):
    kind: EventKind
    name: str

    def poll(self, max_records: int) -> list[dict[str, Any]] | None:
        """Up to ``max_records`` events ready now ([] when none yet, None when exhausted)."""
        ...

    def close(self) -> None: ...


def shard_of(index: int, shards: int) -> int:
    return index % shards


def envelope(kind: EventKind, event_id: str, event_time: int, source: str) -> dict[str, Any]:
    return {"schema": kind.name, "v": kind.version, "event_id": event_id, "event_time": event_time,
            "source": source}  # fmt: skip

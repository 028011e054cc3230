"""The interface every source client implements."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tormenta.contracts import EventKind

if TYPE_CHECKING:
    from ingestors.producer import EventProducer

log = logging.getLogger("tormenta.ingestor")


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


@dataclass
class Opened:
    """A source client as a kind's ``open_source`` hands it to the runner: a pulling source with the
    ``rate`` (events/s) to pull at and its optional feed ``checkpoint``, or, with ``rate`` None, a
    server (``serve_forever``) that sends what its clients push, as it arrives."""

    source: Any
    rate: float | None = None
    checkpoint: FeedCheckpoint | None = None
    rate_of: Callable[[], float] | None = None  # the rate anew, after the source took a control change


class FeedCheckpoint:
    """Saves a pulling source's position once Kafka acknowledged everything before it.

    At-least-once at the source: after a crash the feed resumes from the last saved position,
    so events sent after it are sent again, with the same event ids; the streaming job stores
    them once (cross-batch dedupe by event id). Nothing between two saves can be skipped.
    """

    def __init__(self, path: str | None, source, producer: EventProducer, every_s: float = 1.0) -> None:
        self.path = Path(path) if path else None
        self.source, self.producer, self.every_s = source, producer, every_s
        self.last = time.monotonic()
        if self.path and self.path.exists():
            position = json.loads(self.path.read_text())
            notes = source.seek(position) or []
            log.info("resuming %s from %s", self.path, position)
            for note in notes:
                log.warning("feed position: %s", note)

    def maybe_save(self, force: bool = False) -> None:
        if not self.path or (not force and time.monotonic() - self.last < self.every_s):
            return
        self.last = time.monotonic()
        if self.producer.flush(30) > 0 or self.producer.stats.failed:
            return  # not everything acknowledged: keep the previous position
        self.save()

    def save(self) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.source.position()))
        os.replace(tmp, self.path)  # atomic: a crash leaves the old or the new position

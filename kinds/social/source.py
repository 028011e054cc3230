"""Simulated feed of politicians' pages: posts and comments with author, text, language, time.

Comment ``n`` of a page is a pure function of (seed, page, n), like a real feed paged by
position. Several ingestors can share one hot page: ingestor ``shard`` of ``shards`` pulls only
the comments with ``n % shards == shard``, so together they cover the page exactly once.
Storm mode multiplies one page's share (10-100x), as during a scandal.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from pathlib import Path
from typing import Any

from ingestors.sources.base import FeedCheckpoint, Opened
from tormenta.batch import Window
from tormenta.contracts import TOPIC_PARTITIONS, encode, topic_for
from tormenta.control import active_storm
from tormenta.reference import POLITICIANS

from .contract import KIND

COMMAND = "social"  # python -m ingestors.runner social --pages pol-01 ...
HELP = "simulated politicians' page feed"

WORDS = {
    "es": ["el", "gobierno", "propuesta", "ley", "votar", "pueblo", "bueno", "corrupto", "mentira",
           "gracias", "apoyo", "escandalo", "renuncia", "excelente", "fraude", "mejor", "peor"],
    "en": ["the", "government", "bill", "vote", "people", "good", "corrupt", "lie", "thanks",
           "support", "scandal", "resign", "great", "fraud", "best", "worst"],
}  # fmt: skip
AUTHORS = [f"user{i:04d}" for i in range(500)]


class PageFeed:
    kind = KIND

    def __init__(
        self,
        pages: list[str],
        shard: int = 0,
        shards: int = 1,
        storm_page: str | None = None,
        storm_factor: int = 1,
        seed: int = 7,
        name: str = "page-feed",
        limit: int | None = None,
    ) -> None:
        if not pages:
            raise ValueError("at least one page")
        if not 0 <= shard < shards:
            raise ValueError(f"shard {shard} not in [0, {shards})")
        if not 1 <= storm_factor <= 1000:
            raise ValueError("storm_factor must be in [1, 1000]")
        self.pages = sorted(pages)
        self.shard, self.shards = shard, shards
        self.weights = {p: (storm_factor if p == storm_page else 1) for p in self.pages}
        self.base_weights = dict(self.weights)  # without a storm on demand
        self.seed = seed
        self.name = f"{name}/{shard}of{shards}"
        self.limit = limit
        self.emitted = 0
        self._next_n = {p: shard for p in self.pages}  # next comment index this shard owns
        self._credit = {p: 0.0 for p in self.pages}

    def control(self, doc: dict[str, Any], now_ms: int) -> None:
        """The run's control plane, passed on by the supervising task: a storm on demand blowing
        now on one of this feed's pages multiplies that page's share (``tormenta_storm``)."""
        storm = active_storm(doc.get("storms") or [], now_ms)
        weights = dict(self.base_weights)
        if storm and storm["page"] in weights:
            weights[storm["page"]] = max(weights[storm["page"]], int(storm["factor"]))
        self.weights = weights

    def rate_multiplier(self) -> float:
        """Total weight: a storm raises how many events per second this feed produces."""
        return sum(self.weights.values()) / len(self.pages)

    def comment(self, page: str, n: int, now_ms: int) -> dict[str, Any]:
        # 160 bits of BLAKE2b over (seed, page, n) decide everything: deterministic, and ~10x
        # cheaper than a seeded random.Random per comment (which was most of an ingestor's CPU).
        digest = hashlib.blake2b(b"%d|%s|%d" % (self.seed, page.encode(), n), digest_size=20).digest()
        bits = int.from_bytes(digest, "little")
        lang = "es" if bits % 10 < 7 else "en"
        vocab = WORDS[lang]
        count = 4 + (bits >> 8) % 11
        words = [vocab[(bits >> (16 + 8 * i)) % len(vocab)] for i in range(count)]
        if (bits >> 4) % 10 < 3:
            words.append(POLITICIANS.get(page, {}).get("handle", "@someone"))
        return {"schema": KIND.name, "v": KIND.version, "event_id": f"{page}-c{n:012d}", "event_time": now_ms,
                "source": self.name, "page_id": page, "post_id": f"{page}-p{n // 50:08d}",
                "author": AUTHORS[(bits >> 136) % len(AUTHORS)], "text": " ".join(words), "lang": lang}  # fmt: skip

    def poll(self, max_records: int) -> list[dict[str, Any]] | None:
        if self.limit is not None:
            if self.emitted >= self.limit:
                return None
            max_records = min(max_records, self.limit - self.emitted)
        total_w = sum(self.weights.values())
        now_ms = int(time.time() * 1000)
        out: list[dict[str, Any]] = []
        for page in self.pages:  # weighted round: carry fractional shares to the next poll
            self._credit[page] += max_records * self.weights[page] / total_w
        for page in self.pages:
            while self._credit[page] >= 1 and len(out) < max_records:
                out.append(self.comment(page, self._next_n[page], now_ms))
                self._next_n[page] += self.shards
                self._credit[page] -= 1
        self.emitted += len(out)
        return out

    def position(self) -> dict[str, Any]:
        """Where this feed is: enough to resume after a restart (see :meth:`seek`)."""
        return {"next_n": dict(self._next_n), "emitted": self.emitted}

    def seek(self, position: dict[str, Any]) -> list[str]:
        """Resume from :meth:`position`, page by page, and say what did not carry over.

        The Params may have changed since the position was saved (pages moved between
        ingestors, another shard count): a page of this feed resumes at its first comment of
        this shard at or after the saved one; a page with no saved position starts at the
        beginning (its comments are re-sent and stored once); saved pages this feed no longer
        reads are left to the ingestor that reads them now.
        """
        saved = {p: int(n) for p, n in position.get("next_n", {}).items()}
        notes = []
        for page in self.pages:
            if page not in saved:
                notes.append(f"{page}: no saved position, starts at the beginning")
                continue
            n = saved[page]
            self._next_n[page] = n + (self.shard - n) % self.shards  # first n >= saved of this shard
            if self._next_n[page] != n:
                notes.append(f"{page}: saved {n} belongs to another shard, resumes at {self._next_n[page]}")
        dropped = sorted(set(saved) - set(self.pages))
        if dropped:
            notes.append(f"no longer read by this feed: {', '.join(dropped)}")
        self.emitted = int(position.get("emitted", 0))
        return notes

    def close(self) -> None:
        pass


def add_arguments(parser) -> None:
    """The ``social`` command's arguments (beside the runner's common ones)."""
    parser.add_argument("--pages", required=True, help="comma-separated page ids, e.g. pol-01,pol-02")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--rate", type=float, default=100.0, help="events/s per page (before storm)")
    parser.add_argument("--storm-page", default=None)
    parser.add_argument("--storm-factor", type=int, default=1)
    parser.add_argument("--max-events", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--state-file", default=None,
                        help="resume from / save the feed position here (acknowledged events only)")  # fmt: skip


def open_source(args, name: str, producer) -> Opened:
    """The feed of ``args``, pulled at ``--rate`` per page (times the storm), with its checkpoint."""
    source = PageFeed([p for p in args.pages.split(",") if p], args.shard, args.shards,
                      args.storm_page, args.storm_factor, args.seed, name=name,
                      limit=args.max_events)  # fmt: skip
    def rate() -> float:  # per page, times the storms
        return args.rate * len(source.pages) * source.rate_multiplier()

    return Opened(source, rate=rate(), checkpoint=FeedCheckpoint(args.state_file, source, producer), rate_of=rate)


def write_window_file(path: str, window: Window, events: int, source_namespace: str, seed: int = 7) -> int:
    """The batch archetype's big file: what this source client dumps for a window: social comments spread evenly over the window,
    one JSON line per record, shaped like a Kafka record (topic, partition, offset, key, value,
    timestamp) so that the file and the Kafka archive go through the same code."""
    feed = PageFeed(sorted(POLITICIANS), seed=seed, name="batch-file")
    topic = topic_for(KIND, source_namespace)
    offsets = [0] * TOPIC_PARTITIONS
    step = (window.end_ms - window.start_ms) / max(1, events)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w") as fh:
        for i in range(events):
            page = feed.pages[i % len(feed.pages)]
            t = window.start_ms + int(i * step)
            event = feed.comment(page, i // len(feed.pages), t)
            # The window in the id: another window's file has other comments (with the feed's ids
            # alone, a second file would be all duplicates of the first in the results namespace).
            event["event_id"] = f"{page}-{window.label}-c{i // len(feed.pages):012d}"
            event["source"] = "batch-file"
            event["sent_at"] = t
            part = zlib.crc32(page.encode()) % TOPIC_PARTITIONS
            fh.write(json.dumps({"topic": topic, "partition": part, "offset": offsets[part], "key": page,
                                 "value": encode(event).decode(), "timestamp": t}) + "\n")  # fmt: skip
            offsets[part] += 1
    tmp.replace(out)
    return events

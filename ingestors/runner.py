"""Run one ingestor as a process: a source client plus the producer, with rate control.

    python -m ingestors.runner social --pages pol-01 --shard 0 --shards 2 --rate 500
    python -m ingestors.runner social --pages pol-01,pol-02 --storm-page pol-01 --storm-factor 50
    python -m ingestors.runner geo-http --port 8181
    python -m ingestors.runner replay --file comments.jsonl --kind social.comment --rate 1000

SIGTERM / SIGINT stop it gracefully: no new records are pulled, everything accepted is flushed,
then a JSON report line is printed. Exit codes, so a supervisor never mistakes a failed run
for success and never retries what cannot work:

* 0: every record sent was acknowledged by Kafka;
* 1 (``EXIT_DELIVERY``): Kafka rejected records or did not acknowledge them in time. A pulling
  source stops at the first such failure instead of producing on, so its saved position (the
  last one fully acknowledged) is at most ``message.timeout.ms`` behind;
* 78 (``tormenta.failures.EXIT_FATAL``, sysexits' EX_CONFIG) and 2 (argparse): the arguments
  cannot work; retrying will not help.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ingestors.producer import DeliveryError, EventProducer
from tormenta.contracts import KINDS
from tormenta.failures import EXIT_FATAL

log = logging.getLogger("tormenta.ingestor")

EXIT_OK, EXIT_DELIVERY = 0, 1


class RateLimiter:
    """Token bucket: ``take()`` returns how many records may be sent now (burst <= 1 s of rate)."""

    def __init__(self, rate: float, clock=time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.clock = clock
        self.tokens = 0.0
        self.last = clock()

    def take(self, at_most: int) -> int:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        n = min(at_most, int(self.tokens))
        self.tokens -= n
        return n


def parse_args(argv: list[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bootstrap", default="127.0.0.1:9092")
    common.add_argument("--name", default=None, help="client id / source name (default: derived)")
    common.add_argument("--duration", type=float, default=0, help="seconds to run (0: until stopped)")
    common.add_argument("--report-every", type=float, default=10.0)
    common.add_argument("--topic", default=None, help="write to this topic instead of the contract's")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="source", required=True)

    s = sub.add_parser("social", parents=[common], help="simulated politicians' page feed")
    s.add_argument("--pages", required=True, help="comma-separated page ids, e.g. pol-01,pol-02")
    s.add_argument("--shard", type=int, default=0)
    s.add_argument("--shards", type=int, default=1)
    s.add_argument("--rate", type=float, default=100.0, help="events/s per page (before storm)")
    s.add_argument("--storm-page", default=None)
    s.add_argument("--storm-factor", type=int, default=1)
    s.add_argument("--max-events", type=int, default=None)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--state-file", default=None,
                   help="resume from / save the feed position here (acknowledged events only)")  # fmt: skip

    g = sub.add_parser("geo-http", parents=[common], help="HTTP endpoint phones POST positions to")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=8181)
    g.add_argument("--device-key-file", default=None,
                   help="key of the per-device tokens (default: $TORMENTA_GEO_DEVICE_KEY_FILE or "
                        "<TORMENTA_HOME>/secrets/geo-devices.key)")  # fmt: skip
    g.add_argument("--no-device-tokens", action="store_true",
                   help="accept positions without tokens (refused beyond loopback)")  # fmt: skip

    r = sub.add_parser("replay", parents=[common], help="replay a JSON-lines or CSV file")
    r.add_argument("--file", required=True)
    r.add_argument("--kind", required=True, choices=sorted(KINDS))
    r.add_argument("--rate", type=float, default=1000.0)
    return p.parse_args(argv)


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


def run_pull(source, producer: EventProducer, rate: float, stop: threading.Event, report,
             checkpoint: FeedCheckpoint | None = None) -> None:  # fmt: skip
    """Pull from ``source`` at ``rate`` events/s and send, until exhausted or ``stop`` is set."""
    limiter = RateLimiter(rate)
    while not stop.is_set():
        if checkpoint is not None:
            checkpoint.maybe_save()
        n = limiter.take(10_000)
        if n == 0:
            producer.poll(0.005)
            continue
        events = source.poll(n)
        if events is None:
            break
        for e in events:
            producer.send(source.kind, e)
        producer.poll(0)
        if producer.stats.failed:
            log.error("Kafka failed %d record(s) (%s): stopping instead of producing on",
                      producer.stats.failed, dict(producer.stats.errors))  # fmt: skip
            break
        report()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.duration:
        threading.Timer(args.duration, stop.set).start()

    name = args.name or f"{args.source}-{int(time.time())}"
    kind_name = {"social": "social.comment", "geo-http": "geo.position"}.get(args.source, getattr(args, "kind", ""))
    producer = EventProducer(args.bootstrap, client_id=name, topics={kind_name: args.topic} if args.topic else None,
                             report_successes=args.source == "geo-http")  # it answers each phone on delivery
    last = [time.monotonic()]

    def report(force: bool = False) -> None:
        if force or time.monotonic() - last[0] >= args.report_every:
            last[0] = time.monotonic()
            log.info("ingestor %s: %s", name, producer.stats.as_dict())

    try:
        source, checkpoint = open_source(args, name, producer)
    except (ValueError, FileNotFoundError) as exc:
        log.error("CONFIG ERROR: %s", exc)
        print(json.dumps({"ingestor": name, "ok": False, "config_error": str(exc)}), flush=True)
        return EXIT_FATAL
    try:
        if args.source == "social":
            run_pull(source, producer, args.rate * len(source.pages) * source.rate_multiplier(), stop, report,
                     checkpoint)  # fmt: skip
        elif args.source == "replay":
            run_pull(source, producer, args.rate, stop, report)
        else:
            threading.Thread(target=source.serve_forever, daemon=True).start()
            log.info("geo endpoint listening on http://%s:%d/v1/positions", args.host, source.port)
            while not stop.is_set():
                producer.poll(0.1)  # serves delivery callbacks, which answer the waiting requests
                report()
    finally:
        source.close()
        try:
            stats = producer.close(timeout=60)
            ok = True
            if checkpoint is not None:
                checkpoint.save()  # everything sent was acknowledged
        except DeliveryError as exc:
            log.error("ingestor %s: %s", name, exc)
            stats, ok = producer.stats, False
        print(json.dumps({"ingestor": name, "ok": ok, **stats.as_dict()}), flush=True)
    return EXIT_OK if ok else EXIT_DELIVERY


def open_source(args: argparse.Namespace, name: str, producer: EventProducer):
    """The source client of ``args`` (and its feed checkpoint); ValueError/FileNotFoundError: bad arguments."""
    if args.source == "social":
        from ingestors.sources.social import PageFeed

        source = PageFeed([p for p in args.pages.split(",") if p], args.shard, args.shards,
                          args.storm_page, args.storm_factor, args.seed, name=name,
                          limit=args.max_events)  # fmt: skip
        return source, FeedCheckpoint(args.state_file, source, producer)
    if args.source == "replay":
        from ingestors.sources.file_replay import FileReplay

        return FileReplay(args.file, KINDS[args.kind], name=name), None
    from ingestors.sources.mobile_geo import GeoHttpSource
    from tormenta.devices import load_key

    key = None if args.no_device_tokens else load_key(args.device_key_file)
    return GeoHttpSource(producer, args.host, args.port, name=name, device_key=key), None


if __name__ == "__main__":
    sys.exit(main())

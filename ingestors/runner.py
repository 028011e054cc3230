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
import signal
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

from ingestors.producer import DeliveryError, EventProducer
from ingestors.sources.base import FeedCheckpoint, Opened  # noqa: F401  (FeedCheckpoint: this module's API)
from tormenta.contracts import KINDS, EventKind, kind_part
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


def commands() -> dict[str, tuple[EventKind, ModuleType]]:
    """The runner's command of every kind with a source client: COMMAND -> (kind, its ``source`` module)."""
    out: dict[str, tuple[EventKind, ModuleType]] = {}
    for kind in KINDS.values():
        module = kind_part(kind, "source")
        if module is None:
            continue
        if module.COMMAND in out or module.COMMAND == "replay":
            raise ImportError(f"{kind.package}.source: the ingestor command {module.COMMAND!r} is taken")
        out[module.COMMAND] = (kind, module)
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bootstrap", default="127.0.0.1:9092")
    common.add_argument("--name", default=None, help="client id / source name (default: derived)")
    common.add_argument("--duration", type=float, default=0, help="seconds to run (0: until stopped)")
    common.add_argument("--report-every", type=float, default=10.0)
    common.add_argument("--topic", default=None, help="write to this topic instead of the contract's")
    common.add_argument("--control-file", default=None,
                        help="JSON the supervising task keeps up to date (the run's storms on demand); read "
                             "every second")  # fmt: skip
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="source", required=True)

    for command, (_kind, module) in sorted(commands().items()):
        module.add_arguments(sub.add_parser(command, parents=[common], help=module.HELP))

    r = sub.add_parser("replay", parents=[common], help="replay a JSON-lines or CSV file")
    r.add_argument("--file", required=True)
    r.add_argument("--kind", required=True, choices=sorted(KINDS))
    r.add_argument("--rate", type=float, default=1000.0)
    return p.parse_args(argv)


class ControlFile:
    """What the supervising task passes on from the run's control plane, re-read when it changes."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.stamp: tuple[int, int] | None = None
        self.doc: dict = {}

    def read(self) -> dict:
        if self.path is None:
            return self.doc
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return self.doc
        if (st.st_mtime_ns, st.st_size) != self.stamp:
            try:
                self.doc = json.loads(self.path.read_text())
                self.stamp = (st.st_mtime_ns, st.st_size)
            except ValueError:  # replaced while read: read again next time
                pass
        return self.doc


def run_pull(source, producer: EventProducer, rate: float, stop: threading.Event, report,
             checkpoint: FeedCheckpoint | None = None, control: ControlFile | None = None,
             rate_of=None, every_s: float = 1.0) -> None:  # fmt: skip
    """Pull from ``source`` at ``rate`` events/s and send, until exhausted or ``stop`` is set.

    Every ``every_s``, a source with ``control(doc, now_ms)`` gets the control file's content (a
    storm on demand changes its mix), and ``rate_of()``, when given, sets the rate anew."""
    limiter = RateLimiter(rate)
    next_control = 0.0
    while not stop.is_set():
        if control is not None and time.monotonic() >= next_control:
            next_control = time.monotonic() + every_s
            if hasattr(source, "control"):
                source.control(control.read(), int(time.time() * 1000))
            rate_now = rate_of() if rate_of is not None else limiter.rate
            if rate_now != limiter.rate:
                log.info("rate now %.1f events/s", rate_now)
                limiter.rate = rate_now
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
    kind, module = commands().get(args.source, (KINDS.get(getattr(args, "kind", "")), None))
    producer = EventProducer(args.bootstrap, client_id=name, topics={kind.name: args.topic} if args.topic else None,
                             report_successes=getattr(module, "REPORT_SUCCESSES", False))  # a server that answers on delivery
    last = [time.monotonic()]

    def report(force: bool = False) -> None:
        if force or time.monotonic() - last[0] >= args.report_every:
            last[0] = time.monotonic()
            log.info("ingestor %s: %s", name, producer.stats.as_dict())

    try:
        opened = open_source(args, name, producer)
    except (ValueError, FileNotFoundError) as exc:
        log.error("CONFIG ERROR: %s", exc)
        print(json.dumps({"ingestor": name, "ok": False, "config_error": str(exc)}), flush=True)
        return EXIT_FATAL
    source, checkpoint = opened.source, opened.checkpoint
    try:
        if opened.rate is not None:
            run_pull(source, producer, opened.rate, stop, report, checkpoint, ControlFile(args.control_file),
                     opened.rate_of)  # fmt: skip
        else:
            threading.Thread(target=source.serve_forever, daemon=True).start()
            log.info("ingestor %s: listening on %s", name, getattr(source, "url", "?"))
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


def open_source(args: argparse.Namespace, name: str, producer: EventProducer) -> Opened:
    """The source client of ``args``; ValueError/FileNotFoundError: bad arguments."""
    if args.source == "replay":
        from ingestors.sources.file_replay import FileReplay

        return Opened(FileReplay(args.file, KINDS[args.kind], name=name), rate=args.rate)
    return commands()[args.source][1].open_source(args, name, producer)


if __name__ == "__main__":
    sys.exit(main())

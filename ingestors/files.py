"""A source client's big file for the batch archetype, announced when it is complete.

    python -m ingestors.files --window-start 2026-11-28T10:00Z --window-end 2026-11-28T10:05Z --events 50000

The kind's source client writes the window's file into ``<home>/landing/incoming/`` (under a
temporary name, renamed when complete), then announces it on ``tormenta.batch.files``: path,
window, size and sha256. The batch DAG is scheduled on that announcement (an Airflow asset with a
Kafka watcher) and processes exactly that file, once, however often it is announced. Prints the
announcement as one JSON line. ``--again FILE``: announce an existing file a second time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from tormenta import batch
from tormenta.contracts import DEFAULT_NAMESPACE, KINDS, kind_part
from tormenta.settings import load


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", default="social.comment", choices=sorted(KINDS))
    p.add_argument("--window-start", help="ISO minute, UTC (with --window-end)")
    p.add_argument("--window-end")
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--source-namespace", default=DEFAULT_NAMESPACE, help="whose topics the records are shaped for")
    p.add_argument("--bootstrap", default=None, help="default: the local stack's Kafka")
    p.add_argument("--again", default=None, help="announce this existing file again (nothing is written)")
    return p.parse_args(argv)


def write(kind_name: str, window: batch.Window, events: int, source_namespace: str, home: Path) -> Path:
    """The kind's source client writes the window's file into the incoming folder."""
    source = kind_part(KINDS[kind_name], "source")
    if source is None or not hasattr(source, "write_window_file"):
        raise ValueError(f"the {kind_name} source client writes no big file (no write_window_file)")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    path = batch.incoming_dir(home) / f"{kind_name.split('.')[0]}-{window.label}-{stamp}.jsonl"
    source.write_window_file(str(path), window, events, source_namespace)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    s = load()
    try:
        if args.again:
            doc = json.loads(Path(args.again).with_suffix(".announced.json").read_text())
        else:
            window = batch.resolve_window(args.window_start, args.window_end, dt.datetime.now(dt.UTC))
            path = write(args.kind, window, args.events, args.source_namespace, s.home)
            doc = batch.file_announcement(path, window, args.events, args.source_namespace)
            path.with_suffix(".announced.json").write_text(json.dumps(doc, sort_keys=True))
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    batch.announce(args.bootstrap or s.kafka_bootstrap, doc)
    print(json.dumps(doc, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

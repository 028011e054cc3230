"""Guards of a streaming checkpoint: one writer at a time, and no restart of a changed query.

Spark keeps a query's progress in its checkpoint folder but checks neither promise itself:

* two drivers started on one checkpoint both run until one of them fails at a commit, each
  writing the same batches meanwhile;
* a query whose processing changed restarts happily on the old checkpoint. A batch replayed
  after that change is computed by the new rules, so "a replayed batch overwrites itself
  byte for byte" no longer holds, and per-batch aggregate cells mix two definitions.

``exclusive`` holds an advisory lock on ``<checkpoint>/tormenta.lock`` for the driver's life
(released by the kernel if the driver dies, even by ``kill -9``). The streaming job takes one
on its namespace too (``<checkpoint root>/_namespaces/<namespace>``): two queries writing one
namespace would overwrite each other's per-batch aggregate cells (batch ids repeat across
queries) or count the same events twice. ``check_shape`` records the
query's shape (its sources and a fingerprint of its processing) on the first start and refuses
a later start whose shape differs, naming what changed. Both need the checkpoint on a local
file system, as the local stack has it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOCK_FILE = "tormenta.lock"
SHAPE_FILE = "tormenta-query.json"


class CheckpointError(RuntimeError):
    """The checkpoint cannot be used as asked; retrying will not help."""


@contextmanager
def exclusive(checkpoint: str | Path, owner: dict[str, Any], what: str = "checkpoint",
              wait_s: float = 10.0) -> Iterator[None]:  # fmt: skip
    """Hold the folder's lock while the block runs; fail if another process still holds it after
    ``wait_s`` (a driver handing over may take a few seconds to exit after its query stopped)."""
    folder = Path(checkpoint)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.5)
                continue
        holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise CheckpointError(f"{what} {folder.name if what == 'namespace' else folder} is in use by another "
                              f"running query ({holder}); one writer per {what}: stop that one first") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({**owner, "pid": os.getpid(), "since": int(time.time())}).encode(), 0)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def check_shape(checkpoint: str | Path, shape: dict[str, Any]) -> str:
    """Record ``shape`` on a new checkpoint; refuse a different one on an old checkpoint.

    Returns ``recorded`` (a new checkpoint), ``adopted`` (progress from before shapes were
    recorded: this shape is taken as its own) or ``same``. Things that may change between
    restarts of one checkpoint (the interval, the batch size limit) must not be in ``shape``.
    """
    path = Path(checkpoint) / SHAPE_FILE
    if not path.exists():
        adopted = (Path(checkpoint) / "offsets").exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(shape, indent=2, sort_keys=True))
        os.replace(tmp, path)
        return "adopted" if adopted else "recorded"
    old = json.loads(path.read_text())
    changed = sorted(k for k in set(old) | set(shape) if old.get(k) != shape.get(k))
    if changed:
        raise CheckpointError(
            f"the query changed since its checkpoint {checkpoint} was written ({', '.join(changed)} "
            "differ), so replayed batches would not reproduce what was stored. Start it as a new query "
            "version (Param query_version + 1: a new checkpoint), or run the previous code.")  # fmt: skip
    return "same"

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
a later start whose shape differs, naming what changed.

A checkpoint on a shared file system (``hdfs://...``, drivers on several hosts) cannot be locked
with a file lock: there the lock is an ephemeral ZooKeeper znode (HBase's quorum), which goes
when its holder's session ends (a ``kill -9``ed holder: after the session timeout), and the shape
file is read and written through Hadoop's FileSystem of the Spark session (``HadoopFiles``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tormenta.settings import is_uri, join

log = logging.getLogger(__name__)

LOCK_FILE = "tormenta.lock"
SHAPE_FILE = "tormenta-query.json"
ZK_LOCKS = "/tormenta/locks"
ZK_SESSION_S = 10.0


class CheckpointError(RuntimeError):
    """The checkpoint cannot be used as asked; retrying will not help."""


@contextmanager
def exclusive(checkpoint: str | Path, owner: dict[str, Any], what: str = "checkpoint", wait_s: float = 10.0,
              zookeeper: str | None = None, on_lost: Callable[[], None] | None = None) -> Iterator[None]:  # fmt: skip
    """Hold the folder's lock while the block runs; fail if another process still holds it after
    ``wait_s`` (a driver handing over may take a few seconds to exit after its query stopped).

    A URI checkpoint is locked in ZooKeeper (``zookeeper``: ``host:port,...``); ``on_lost`` is
    called if that session is lost while the block runs (another driver may take over then)."""
    if is_uri(str(checkpoint)):
        if not zookeeper:
            raise CheckpointError(f"{checkpoint} is on a shared file system: its lock needs a ZooKeeper quorum")
        with _zk_exclusive(str(checkpoint), owner, what, wait_s, zookeeper, on_lost):
            yield
        return
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
        raise _in_use(str(folder), what, holder) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({**owner, "pid": os.getpid(), "since": int(time.time())}).encode(), 0)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _in_use(checkpoint: str, what: str, holder: str) -> CheckpointError:
    name = checkpoint.rstrip("/").rsplit("/", 1)[-1] if what == "namespace" else checkpoint
    return CheckpointError(f"{what} {name} is in use by another running query ({holder}); one writer per {what}: "
                           "stop that one first")  # fmt: skip


@contextmanager
def _zk_exclusive(checkpoint: str, owner: dict[str, Any], what: str, wait_s: float, zookeeper: str,
                  on_lost: Callable[[], None] | None) -> Iterator[None]:  # fmt: skip
    """An ephemeral znode per checkpoint URI. A holder killed with ``kill -9`` keeps it until its
    session expires, so a waiter waits at least two session timeouts before it gives up."""
    from kazoo.client import KazooClient, KazooState
    from kazoo.exceptions import NodeExistsError, NoNodeError

    node = f"{ZK_LOCKS}/{hashlib.sha256(checkpoint.encode()).hexdigest()[:32]}"
    zk = KazooClient(hosts=zookeeper, timeout=ZK_SESSION_S)
    zk.start(timeout=30)
    held = False

    def listener(state) -> None:  # kazoo's thread: must not block
        if state == KazooState.LOST and held:
            log.error("lost the ZooKeeper session holding %s %s: another driver may take it over", what, checkpoint)
            if on_lost:
                on_lost()

    zk.add_listener(listener)
    me = json.dumps({**owner, "pid": os.getpid(), "host": os.uname().nodename, "since": int(time.time()),
                     "checkpoint": checkpoint}).encode()  # fmt: skip
    deadline = time.monotonic() + max(wait_s, 2 * ZK_SESSION_S + 5)
    try:
        while True:
            try:
                zk.create(node, me, ephemeral=True, makepath=True)
                held = True
                break
            except NodeExistsError:
                if time.monotonic() >= deadline:
                    try:
                        holder = zk.get(node)[0].decode(errors="replace")
                    except NoNodeError:
                        continue
                    raise _in_use(checkpoint, what, holder) from None
                time.sleep(0.5)
        yield
    finally:
        held = False
        zk.stop()  # closing the session deletes the ephemeral node
        zk.close()


class LocalFiles:
    """The shape file on a local file system."""

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def read(self, path: str) -> str:
        return Path(path).read_text()

    def write(self, path: str, text: str) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)


class HadoopFiles:
    """The shape file through Hadoop's FileSystem of a Spark session (hdfs://, or any URI Spark reads)."""

    def __init__(self, spark) -> None:
        self.jvm = spark.sparkContext._jvm
        self.conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _fs(self, path: str):
        p = self.jvm.org.apache.hadoop.fs.Path(path)
        return p, p.getFileSystem(self.conf)

    def exists(self, path: str) -> bool:
        p, fs = self._fs(path)
        return bool(fs.exists(p))

    def read(self, path: str) -> str:
        p, fs = self._fs(path)
        stream = fs.open(p)
        try:
            return self.jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def write(self, path: str, text: str) -> None:
        p, fs = self._fs(path)
        tmp = self.jvm.org.apache.hadoop.fs.Path(path + ".tmp")
        out = fs.create(tmp, True)
        try:
            out.write(bytearray(text.encode()))
        finally:
            out.close()
        fs.delete(p, False)
        if not fs.rename(tmp, p):
            raise CheckpointError(f"could not write {path}")


def files_for(checkpoint: str, spark=None) -> LocalFiles | HadoopFiles:
    return HadoopFiles(spark) if is_uri(checkpoint) and spark is not None else LocalFiles()


def check_shape(checkpoint: str | Path, shape: dict[str, Any], files: LocalFiles | HadoopFiles | None = None) -> str:
    """Record ``shape`` on a new checkpoint; refuse a different one on an old checkpoint.

    Returns ``recorded`` (a new checkpoint), ``adopted`` (progress from before shapes were
    recorded: this shape is taken as its own) or ``same``. Things that may change between
    restarts of one checkpoint (the interval, the batch size limit) must not be in ``shape``.
    """
    files = files or LocalFiles()
    path = join(checkpoint, SHAPE_FILE)
    if not files.exists(path):
        adopted = files.exists(join(checkpoint, "offsets"))
        files.write(path, json.dumps(shape, indent=2, sort_keys=True))
        return "adopted" if adopted else "recorded"
    old = json.loads(files.read(path))
    changed = sorted(k for k in set(old) | set(shape) if old.get(k) != shape.get(k))
    if changed:
        raise CheckpointError(
            f"the query changed since its checkpoint {checkpoint} was written ({', '.join(changed)} "
            "differ), so replayed batches would not reproduce what was stored. Start it as a new query "
            "version (Param query_version + 1: a new checkpoint), or run the previous code.")  # fmt: skip
    return "same"

"""Checkpoint guards for drivers on several hosts: a checkpoint on a shared file system (a URI) is
locked in ZooKeeper (here the local HBase's), and its query shape goes through Hadoop's FileSystem."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tormenta import checkpoints
from tormenta.settings import REPO_ROOT

pytestmark = pytest.mark.integration

HOLDER = """
import sys, time
from tormenta import checkpoints
with checkpoints.exclusive(sys.argv[1], {"query": "holder"}, zookeeper=sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_uri_checkpoint_has_one_writer_across_hosts_and_a_killed_holder_frees_it(stack, unique):
    quorum = f"{stack.bind_host}:{stack.zookeeper_port}"
    uri = f"hdfs://nn.invalid:8020/ck/{unique}/q/v1"  # never opened: the lock is in ZooKeeper
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, uri, quorum], stdout=subprocess.PIPE, text=True,
                              cwd=REPO_ROOT, start_new_session=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(checkpoints.CheckpointError, match=r'in use by another running query \(.*"holder"'):
            with checkpoints.exclusive(uri, {"query": "second"}, wait_s=1, zookeeper=quorum):
                pass
        waited = time.monotonic() - t0
        # it waits out a killed holder's session (2 x 10 s) before it gives up on a live one
        assert waited >= 2 * checkpoints.ZK_SESSION_S
        os.killpg(holder.pid, signal.SIGKILL)  # no clean close: ZooKeeper must expire the session
        holder.wait()
        t_kill = time.monotonic()
        with checkpoints.exclusive(uri, {"query": "third"}, wait_s=1, zookeeper=quorum):
            took = time.monotonic() - t_kill
        assert took < 2 * checkpoints.ZK_SESSION_S + 5
        # released on exit: the next one gets it at once
        t1 = time.monotonic()
        with checkpoints.exclusive(uri, {"query": "fourth"}, wait_s=1, zookeeper=quorum):
            assert time.monotonic() - t1 < 5
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)


def test_a_uri_checkpoint_without_a_quorum_is_refused():
    with pytest.raises(checkpoints.CheckpointError, match="ZooKeeper"):
        with checkpoints.exclusive("hdfs://nn:8020/ck", {"query": "q"}):
            pass


def test_the_query_shape_of_a_uri_checkpoint_goes_through_hadoops_file_system(spark, tmp_path):
    uri = (tmp_path / "ck").as_uri()  # file:///...: Hadoop's LocalFileSystem, the same API as HDFS
    files = checkpoints.files_for(uri, spark)
    assert isinstance(files, checkpoints.HadoopFiles)
    assert checkpoints.check_shape(uri, {"topics": ["a"]}, files) == "recorded"
    assert json.loads((tmp_path / "ck" / checkpoints.SHAPE_FILE).read_text()) == {"topics": ["a"]}
    assert checkpoints.check_shape(uri, {"topics": ["a"]}, files) == "same"
    with pytest.raises(checkpoints.CheckpointError, match="topics differ"):
        checkpoints.check_shape(uri, {"topics": ["b"]}, files)
    old = tmp_path / "old"
    (old / "offsets").mkdir(parents=True)
    assert checkpoints.check_shape(old.as_uri(), {"topics": ["a"]}, files) == "adopted"

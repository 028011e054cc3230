"""Checkpoint guards: one writer per checkpoint, no restart of a changed query (no services)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tormenta.checkpoints import CheckpointError, check_shape, exclusive

pytestmark = pytest.mark.unit

HOLD = """
import sys, time
from tormenta.checkpoints import exclusive
with exclusive(sys.argv[1], {"query": "q1"}):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_fails_at_once_and_a_killed_one_frees_the_checkpoint(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CheckpointError, match=r"in use by another running query \(.*\"query\": \"q1\""):
            with exclusive(tmp_path, {"query": "q2"}, wait_s=1):
                pass
    finally:
        holder.kill()  # kill -9: the kernel drops its lock
        holder.wait()
    with exclusive(tmp_path, {"query": "q2"}):
        assert json.loads((tmp_path / "tormenta.lock").read_text())["query"] == "q2"


def test_the_shape_is_recorded_then_enforced(tmp_path):
    shape = {"sources": {"t.social": "social.comment v1"}, "processing": "abc"}
    assert check_shape(tmp_path, shape) == "recorded"
    assert check_shape(tmp_path, dict(shape)) == "same"
    with pytest.raises(CheckpointError, match=r"\(processing differ\).*query_version"):
        check_shape(tmp_path, {**shape, "processing": "abd"})
    with pytest.raises(CheckpointError, match=r"\(processing, sources differ\)"):
        check_shape(tmp_path, {"sources": {}, "processing": "x"})


def test_progress_from_before_shapes_were_recorded_is_adopted(tmp_path):
    (tmp_path / "offsets").mkdir()
    assert check_shape(tmp_path, {"processing": "abc"}) == "adopted"
    with pytest.raises(CheckpointError):
        check_shape(tmp_path, {"processing": "abd"})


def test_the_plan_fingerprint_ignores_what_differs_between_two_drivers_of_the_same_code():
    from types import SimpleNamespace

    from spark_jobs.streaming import plan_fingerprint

    args = SimpleNamespace(query_name="q", topics={})
    one = ("Project [a#12L, b#7] +- SubqueryAlias _tormenta_union_0123456789abcdef0123456789abcdef_0\n"
           "+- Repartition 1, false\n"
           "+- MapPartitions org.apache.spark.sql.internal.ToScalaUDF$$$Lambda$2306/0x00007f46accf7018@76a7f5b8, obj")
    two = ("Project [a#40L, b#41] +- SubqueryAlias _tormenta_union_fedcba9876543210fedcba9876543210_0\n"
           "+- Repartition 2, false\n"
           "+- MapPartitions org.apache.spark.sql.internal.ToScalaUDF$$$Lambda$2311/0x00007f370ccf7b10@11e4d66c, obj")
    assert plan_fingerprint(one, args) == plan_fingerprint(two, args)
    assert plan_fingerprint(one, args) != plan_fingerprint(one.replace("b#7", "c#7"), args)


def test_the_last_processed_batch_of_a_stopped_query_skips_an_idle_triggers_next_id():
    from spark_jobs.streaming import last_batch

    assert last_batch({"batchId": 50, "numInputRows": 300}) == 50  # the batch just processed
    assert last_batch({"batchId": 51, "numInputRows": 0}) == 50  # idle: the id of the next batch
    assert last_batch({"batchId": 0, "numInputRows": 0}) is None  # nothing processed yet
    assert last_batch(None) is None

"""Contract 15 through the running Airflow: a user marks the streaming task failed.

Airflow's task supervisor then sends SIGTERM to the task and SIGKILL 5 s later; the operator asks
the Python driver to stop, and the driver also stops when its task process is gone. The query
must stop with no driver process left, and the next run must resume it from its checkpoint with
every event stored once.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.e2e.story import MB, STOP, one_ingestor_conf, own_namespace, processes_of, ti, wait_until

pytestmark = pytest.mark.e2e

PER_INGESTOR_RUN1, PER_INGESTOR_RUN2 = 2500, 3000  # one ingestor (no hot page): run 2 resumes its feed


def _batches(log: str) -> list[int]:
    return [int(m) for m in re.findall(r'\{"batch": (\d+)', log)]


@pytest.mark.contract(15)
def test_marking_the_stream_failed_stops_the_driver_and_the_next_run_resumes(admin, stack, request):

    ns, hbase = own_namespace(stack, request, "mf")
    conf = one_ingestor_conf(ns, PER_INGESTOR_RUN1)
    run1 = admin.trigger(MB, conf=conf)["dag_run_id"]
    table = f"{ns}_social_comments"
    wait_until("first events in HBase", lambda: hbase.count(table) > 0, timeout=360)
    drivers = [p for p in processes_of(ns) if "SparkSubmit" in " ".join(p.cmdline()) or "streaming.py" in " ".join(p.cmdline())]
    assert drivers, "no streaming driver running"

    admin.set_task_state(MB, run1, "stream", "failed")  # what the UI's "Mark as failed" does
    t_mark = time.monotonic()
    wait_until("no driver process left", lambda: not any(p.is_running() for p in drivers), timeout=60, every=0.5)
    gone_after_s = time.monotonic() - t_mark
    assert admin.wait_for_run(MB, run1, timeout=400)["state"] == "failed"  # the supervisor stops the rest
    stream1 = ti(admin, MB, run1, "stream")
    assert stream1["state"] == "failed" and stream1["try_number"] == 1  # marked failed: not retried
    log1 = admin.task_log(MB, run1, "stream", stream1["try_number"])
    # Two ways to a graceful stop race here: the operator's on_kill (SIGTERM to the driver: stop
    # now) and the run's supervisor, which sees the failed task and asks the stream to drain
    how = [why for why, line in (("sigterm", "stopping the query now (SIGTERM received), without draining"),
                                 ("drained", "stop requested: draining what is in Kafka")) if line in log1]  # fmt: skip
    assert how, log1[-3000:]
    assert "did not stop within" not in log1  # the query stopped; the last-resort timer did not fire
    assert not [p for p in processes_of(ns) if p.is_running()]  # ingestors too

    run2 = admin.trigger(MB, conf={**conf, "max_events_per_ingestor": PER_INGESTOR_RUN2})["dag_run_id"]
    wait_until("run 2 events stored", lambda: hbase.count(table) >= PER_INGESTOR_RUN2, timeout=600)
    stop = admin.trigger(STOP, conf={"namespace": ns})["dag_run_id"]
    assert admin.wait_for_run(STOP, stop, timeout=600)["state"] == "success"
    assert admin.wait_for_run(MB, run2, timeout=300)["state"] == "success"
    log2 = admin.task_log(MB, run2, "stream", ti(admin, MB, run2, "stream")["try_number"])

    # the query resumed from its checkpoint: run 2 carries on run 1's batch ids (the batch in
    # flight at the kill, never committed, may run again)
    last1, first2 = max(_batches(log1)), min(_batches(log2))
    assert first2 in (last1, last1 + 1), (last1, first2)
    assert hbase.count(table) == PER_INGESTOR_RUN2  # every event of the resumed feed, once
    assert hbase.dead_letter_reasons(ns) == {}  # and none seen twice
    print(json.dumps({"driver_gone_after_s": round(gone_after_s, 1), "last_batch_run1": last1, "first_batch_run2": first2,
                      "stopped_by": how}))

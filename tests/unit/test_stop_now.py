"""The streaming driver's stop-now: the last-resort timer ends a driver whose stop hangs."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from tormenta import failures

pytestmark = pytest.mark.unit

HANGING_DRIVER = textwrap.dedent("""
    import os, signal, sys, time
    from tormenta import failures
    failures.STOP_NOW_BOUND_S = 1.0
    from spark_jobs.streaming import StopNow
    stop = StopNow().install()
    print("ready", flush=True)
    while not stop():
        time.sleep(0.05)
    print("stopping:", stop(), flush=True)
    time.sleep(60)  # a query.stop() that never returns
    print("not reached", flush=True)
""")


def test_a_stop_that_hangs_is_ended_by_the_bound():
    proc = subprocess.Popen([sys.executable, "-c", HANGING_DRIVER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(20)  # the bound is 1 s here; without it the 60 s hang would time this out
    out = proc.stdout.read()
    assert rc == failures.EXIT_STOPPED
    assert "stopping: SIGTERM received" in out and "not reached" not in out


def test_without_a_stop_request_nothing_stops():
    from spark_jobs.streaming import StopNow

    stop = StopNow()  # under pytest, not started by spark-submit: no starter to watch
    assert stop() is None

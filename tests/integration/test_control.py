"""The stop protocol's two ends in the control plane (HBase), shared by the stop DAG and
`tormenta stack down`: ask the running pipeline to stop, wait until it has."""

from __future__ import annotations

import threading

import pytest

from tormenta.contracts import TABLES, table_name
from tormenta.control import ControlPlane, StopStalled
from tormenta.hbase import HBaseEndpoint, ensure_table
from tormenta.schema import drop_namespace

pytestmark = pytest.mark.integration


@pytest.fixture
def control(stack, hbase, unique):
    ns = f"t{unique}"
    ensure_table(hbase, table_name("control", ns), TABLES["control"])
    yield ControlPlane(HBaseEndpoint(stack.bind_host, stack.thrift_port), ns)
    drop_namespace(hbase, ns)


def test_stop_active_asks_only_a_running_pipeline_and_wait_stopped_sees_it_stop(control):
    assert control.stop_active("nothing runs") is None
    control.begin("run-1")
    assert control.stop_active("from the test") == "run-1"
    assert control.state("run-1")["phase"] == "stopping" and control.stop_reason("run-1") == "from the test"
    assert control.stop_active("again") == "run-1" and control.stop_reason("run-1") == "from the test"

    assert control.wait_stopped("run-1", timeout=0.5, poll_s=0.1)["phase"] == "stopping"  # not yet
    seen = []
    threading.Timer(1.0, control.finish, ["run-1"]).start()  # the supervisor, once every part stopped
    assert control.wait_stopped("run-1", timeout=30, poll_s=0.1, progress=seen.append)["phase"] == "stopped"
    assert seen and all(s["phase"] == "stopping" for s in seen)
    assert control.stop_active("after the end") is None


def test_a_stop_that_cannot_complete_says_why_at_once(control):
    control.begin("run-2")
    control.stop_active("from the test")
    with pytest.raises(StopStalled, match="the stop of run-2 cannot complete: the run's tasks are gone"):
        control.wait_stopped("run-2", timeout=60, poll_s=0.1, stalled=lambda state: "the run's tasks are gone")

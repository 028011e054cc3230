"""The stores of tormenta/ (control plane, schema, reference data, metrics, run resources, batch
run records) on the shared in-memory HBase: the logic of each, fast. Every one of them is also
exercised against the real HBase by the integration tests."""

from __future__ import annotations

import pytest

from tests.fakes import MemoryHBase
from tormenta import metrics, reference, resources, schema
from tormenta.contracts import TABLES, table_name
from tormenta.control import ControlPlane, RoleError, StopStalled

pytestmark = pytest.mark.unit


@pytest.fixture
def hbase():
    hbase = MemoryHBase()
    schema.ensure_tables(hbase, "ns")
    return hbase


def test_schema_creates_every_table_once_and_drops_only_its_namespace(hbase):
    assert schema.ensure_tables(hbase, "ns") == []
    assert len(schema.ensure_tables(hbase, "other")) == len(TABLES)
    assert schema.drop_namespace(hbase, "ns") == len(TABLES)
    assert hbase.tables() == sorted(table_name(t, "other").encode() for t in TABLES)


def test_the_stop_protocol_from_begin_to_finish(hbase):
    control = ControlPlane(hbase, "ns")
    assert control.stop_active("nothing runs") is None
    control.begin("r1")
    assert control.active_run() == "r1" and control.state("r1")["phase"] == "running"
    assert control.stop_active("stop DAG") == "r1"
    assert control.request_stop("r1", "again") is False  # the first reason is kept
    assert control.state("r1")["stop"] == "stop DAG" and control.state("r1")["phase"] == "stopping"
    control.mark_failed("r1", "ingest-a", {"error": "broker gone"})
    assert control.state("r1")["failed"]["ingest-a"]["error"] == "broker gone"
    control.clear_failure("r1", "ingest-a")
    control.mark_stopped("r1", "ingest-a", {"sent": 5})
    control.request_stream_stop("r1")
    assert control.stream_stop_requested("r1") and control.state("r1")["phase"] == "draining"
    with pytest.raises(StopStalled, match="the stream died"):
        control.wait_stopped("r1", timeout=5, poll_s=0, stalled=lambda s: "the stream died")
    control.finish("r1")
    state = control.wait_stopped("r1", timeout=0)
    assert state["phase"] == "stopped" and state["failed"] == {} and state["stopped"]["ingest-a"]["sent"] == 5
    assert control.stop_active("late") is None  # a finished run is not asked again


def test_a_namespace_keeps_the_role_that_wrote_it_first(hbase):
    control = ControlPlane(hbase, "ns")
    assert control.claim_role("batch") == "batch"
    assert control.claim_role("batch") == "batch"
    with pytest.raises(RoleError, match="holds batch results"):
        control.claim_role("stream")


def test_reference_rows_are_written_once_and_the_cache_reads_the_zones_back():
    hbase = MemoryHBase()
    counts = reference.seed(hbase, device_count=30, namespace="ns")
    assert counts == {table_name("ref_politicians", "ns"): len(reference.POLITICIANS),
                      table_name("ref_devices", "ns"): 30, table_name("ref_zones", "ns"): len(reference.zones())}  # fmt: skip
    before = {t: {k: {c: dict(v) for c, v in r.items()} for k, r in rows.items()} for t, rows in hbase.data.items()}
    reference.seed(hbase, device_count=30, namespace="ns")
    assert hbase.data == before  # the fixed cell timestamp: seeding again adds no version
    cache = reference.ReferenceCache(hbase, namespace="ns").get()
    assert cache.zones == reference.zones()


def test_metrics_latest_batch_and_a_runs_batches_in_order(hbase):
    assert metrics.latest(hbase, "ns", "q") is None
    for seq in (9, 10, 2):  # not in key order: the zero padding sorts them
        metrics.write_result(hbase, "ns", "q", seq, {"seq": seq}, run_id="r1" if seq != 2 else "r0")
    metrics.write_progress(hbase, "ns", "q", 10, {"batchId": 10})
    metrics.write_result(hbase, "ns", "q-other", 99, {"seq": 99})
    newest = metrics.latest(hbase, "ns", "q")
    assert newest == {"key": metrics.row_key("q", 10).decode(), "result": {"seq": 10}, "progress": {"batchId": 10}}
    assert metrics.run_results(hbase, "ns", "r1") == [{"seq": 9}, {"seq": 10}]
    assert metrics.run_results(hbase, "ns", "r1", limit=1) == [{"seq": 9}]
    assert metrics.latest(MemoryHBase(), "ns", "q") is None  # no table yet


def test_run_resources_add_up_over_tries(hbase):
    for try_number, cpu in ((1, 2.0), (2, 3.5)):
        usage = resources.Usage("spark:stream", cpu_seconds=cpu, peak_rss_mb=100.0 * try_number,
                                services_cpu_seconds={"hbase": 1.0})  # fmt: skip
        resources.store(hbase, "ns", "dag", "run", try_number, usage)
    resources.store(hbase, "ns", "dag", "other-run", 1, resources.Usage("spark:stream", cpu_seconds=50))
    got = resources.load(hbase, "ns", "dag", "run")
    assert got["spark:stream"]["cpu_seconds"] == 5.5 and got["spark:stream"]["tries"] == 2
    assert got["spark:stream"]["peak_rss_mb"] == 200.0 and got["spark:stream"]["services_cpu_seconds"] == {"hbase": 2.0}

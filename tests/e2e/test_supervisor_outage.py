"""The supervisor survives an outage of HBase, the store it reads the control plane from.

HBase and its Thrift server are down for 75 s while a micro-batch run is running (an outage of
~40 s used to leave the run unsupervised: no handover, no stop). Afterwards the same supervisor
try still supervises: the stop DAG stops the run in order, the run ends green, no process is
left, and the stored feed has no hole.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.story import MB, STOP, one_ingestor_conf, own_namespace, processes_of, ti, wait_until

pytestmark = pytest.mark.e2e

OUTAGE_S = 75


def test_a_run_outlives_an_hbase_outage_and_still_stops_in_order(admin, stack, request):
    from tests.integration.test_chaos import holes
    from tormenta import stack as stack_mod

    ns, hbase = own_namespace(stack, request, "ho")
    conf = one_ingestor_conf(ns, 0)
    run = admin.trigger(MB, conf=conf)["dag_run_id"]
    table = f"{ns}_social_comments"
    wait_until("first events in HBase", lambda: hbase.count(table) > 0, timeout=360)

    try:
        assert stack_mod.down(["hbase-thrift", "hbase"]) == ["hbase-thrift", "hbase"]
        time.sleep(OUTAGE_S)
    finally:
        stack_mod.up()
    before = hbase.count(table)
    wait_until("events stored again after the outage", lambda: hbase.count(table) > before, timeout=300)
    assert admin.dag_run(MB, run)["state"] == "running"
    supervise = ti(admin, MB, run, "supervise")
    assert supervise["state"] == "running" and supervise["try_number"] == 1  # the same try rode it out

    stop = admin.trigger(STOP, conf={"namespace": ns})["dag_run_id"]
    assert admin.wait_for_run(STOP, stop, timeout=600)["state"] == "success"
    assert admin.wait_for_run(MB, run, timeout=300)["state"] == "success"
    log = admin.task_log(MB, run, "supervise", 1)
    assert "still failing" not in log and "retrying" in log.lower(), log[-3000:]  # it saw the outage, and waited
    time.sleep(3)
    assert [p for p in processes_of(ns) if p.is_running()] == []

    conn = hbase.conn()
    try:
        ids = [k.split(b"|", 1)[1].decode() for k, _ in conn.table(table).scan(columns=[b"d:page_id"])]
    finally:
        conn.close()
    assert ids and holes(ids) == [], holes(ids)[:10]
    assert set(hbase.dead_letter_reasons(ns)) <= {"duplicate_event_id"}

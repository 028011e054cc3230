"""The geo lane under Airflow: the micro-batch DAG runs two HTTP endpoints and the phones that
post to them as supervised tasks. kill -9 one endpoint and the phones: Airflow retries both, and
every phone's positions reach HBase again, through both endpoints."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.e2e.story import MB, STOP, own_namespace, processes_of, tis, wait_until
from tormenta.hbase import HBaseEndpoint

pytestmark = pytest.mark.e2e

DEVICES = 20


def latest_times(endpoint: HBaseEndpoint, ns: str) -> dict[str, int]:
    """Event time of each device's newest stored position (``<ns>_geo_latest``)."""
    with endpoint.session() as conn:
        if f"{ns}_geo_latest".encode() not in conn.tables():
            return {}
        return {k.decode(): int(c[b"d:event_time"]) for k, c in conn.table(f"{ns}_geo_latest").scan(
            columns=[b"d:event_time"])}  # fmt: skip


def phones_process() -> psutil.Process | None:
    for p in psutil.process_iter(["cmdline"]):
        if "ingestors.fleet" in " ".join(p.info["cmdline"] or []):
            return p
    return None


def test_killed_geo_endpoint_and_phones_are_restarted_and_every_phone_reports_again(admin, stack, request):
    ns, _fresh = own_namespace(stack, request, "geo")
    conf = {"namespace": ns, "interval": "PT2S", "sources": ["geo"], "geo_endpoints": 2, "geo_devices": DEVICES,
            "geo_rate": 40}  # fmt: skip
    run = admin.trigger(MB, conf=conf)["dag_run_id"]
    endpoint = HBaseEndpoint(stack.bind_host, stack.thrift_port)
    try:
        wait_until("every phone's first position in HBase", lambda: len(latest_times(endpoint, ns)) == DEVICES,
                   timeout=420)  # fmt: skip
        geo_http = wait_until("the first endpoint's process", lambda: next(
            (p for p in processes_of(ns) if "geo-http" in " ".join(p.cmdline()) and "--port 8181" in " ".join(p.cmdline())),
            None), timeout=60)  # fmt: skip
        phones = wait_until("the phones' process", phones_process, timeout=60)
        os.kill(geo_http.pid, signal.SIGKILL)
        os.kill(phones.pid, signal.SIGKILL)
        killed_ms = int(time.time() * 1000)

        def retried() -> dict | None:
            ingest = {t.get("rendered_map_index"): t for t in tis(admin, MB, run) if t["task_id"] == "ingest"}
            both = [ingest.get("geo-http-1"), ingest.get("phones")]
            ok = all(t and t["try_number"] >= 2 and t["state"] == "running" for t in both)
            return ok and ingest

        ingest = wait_until("endpoint and phones retried by Airflow", retried, timeout=300)
        assert ingest["geo-http-2"]["try_number"] == 1  # the other endpoint kept running
        # Every phone reports again, half of them through the restarted endpoint.
        wait_until("every phone's positions after the kill", lambda: all(
            t > killed_ms for t in latest_times(endpoint, ns).values()), timeout=300)  # fmt: skip
    finally:
        stop = admin.trigger(STOP, conf={"namespace": ns})["dag_run_id"]
        assert admin.wait_for_run(STOP, stop, timeout=600)["state"] == "success"
    final = admin.wait_for_run(MB, run, timeout=300)
    states = {(t["task_id"], t.get("rendered_map_index")): t["state"] for t in tis(admin, MB, run)}
    assert final["state"] == "success", states
    assert not [p for p in processes_of(ns) if p.is_running()]

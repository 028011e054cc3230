"""The micro-batch DAG's ``mode`` Param, triggered through the REST API: a triggered run takes what
the namespace's topics hold (put there by an ingestor outside Airflow) and ends green."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.story import MB, own_namespace, tis
from tormenta.settings import REPO_ROOT

pytestmark = pytest.mark.e2e


def _prepare_and_send(stack, ns: str, n: int) -> int:
    """The namespace prepared, and ``n`` comments sent to its topic by an ingestor outside Airflow."""
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "tormenta"), "prepare", "--namespace", ns, "--devices", "10"], check=True,
                   capture_output=True, cwd=REPO_ROOT, timeout=600)  # fmt: skip
    sent = subprocess.run([str(bin_dir / "python"), "-m", "ingestors.runner", "social", "--pages", "pol-01,pol-02",
                           "--rate", "500", "--max-events", str(n), "--bootstrap", stack.kafka_bootstrap,
                           "--topic", f"{ns}.social.comments"], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300, check=True)  # fmt: skip
    acked = json.loads(sent.stdout.strip().splitlines()[-1])["acked"]
    assert acked == n
    return acked


def test_a_triggered_run_drains_the_topic_and_ends_success(admin, stack, request):
    ns, fresh = own_namespace(stack, request, "trg")
    acked = _prepare_and_send(stack, ns, 250)
    run = admin.trigger(MB, conf={"namespace": ns, "mode": "triggered", "max_records_per_batch": 100})["dag_run_id"]
    final = admin.wait_for_run(MB, run, timeout=900)
    states = {t["task_id"]: t["state"] for t in tis(admin, MB, run)}
    assert final["state"] == "success", states
    assert states["ingest"] == "skipped" and states["stream"] == "success" and states["supervise"] == "success"
    assert fresh.count(f"{ns}_social_comments") == acked


def test_the_triggered_schedule_starts_a_triggered_run_that_drains_the_topic(admin, stack, request):
    """tormenta_microbatch_triggered: paused when created, every 5 minutes once unpaused. A run of it
    starts a micro-batch run with mode triggered in its namespace, waits for it and ends as it did.

    Run with ``airflow dags test`` (the DAG stays paused): unpaused, the scheduler would also start
    runs of its own, in the default namespace, which the other tests use."""
    from tormenta import microbatch

    trg = microbatch.TRIGGERED_DAG_ID
    admin.wait_for_dag(trg)
    details = admin.request("GET", f"/api/v2/dags/{trg}/details")
    assert details["is_paused"] and "*/5 * * * *" in str(details["timetable_summary"])
    ns, fresh = own_namespace(stack, request, "sch")
    acked = _prepare_and_send(stack, ns, 120)
    tested = subprocess.run([str(Path(sys.executable).parent / "tormenta"), "airflow", "dags", "test", trg, "-c",
                             json.dumps({"namespace": ns})], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=900)  # fmt: skip
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert "DagRun finished with allowed state" in tested.stdout + tested.stderr
    newest = admin.request("GET", f"/api/v2/dags/{MB}/dagRuns?limit=20&order_by=-run_after")["dag_runs"]
    started = [r for r in newest if (r.get("conf") or {}).get("namespace") == ns]
    assert [(r["conf"]["mode"], r["state"]) for r in started] == [("triggered", "success")]
    assert fresh.count(f"{ns}_social_comments") == acked
    assert admin.request("GET", f"/api/v2/dags/{trg}/details")["is_paused"]


@pytest.mark.parametrize("interval, seconds, batches", [("PT1S", 1.0, 20), ("PT10S", 10.0, 6)])
def test_always_on_batches_follow_the_interval(admin, stack, request, interval, seconds, batches):
    """An always-on run at the interval a user picks: the micro-batches it stores start one interval
    apart (median gap within 20%), measured from the stored batch start times. Unless the run's plan
    task said beforehand that this machine cannot hold the interval (a micro-batch's fixed cost is
    longer, ``tormenta.capacity``): then the batches run back to back, as it said."""
    import statistics

    from tests.e2e.story import STOP, one_ingestor_conf, wait_until
    from tormenta import metrics
    from tormenta.hbase import HBaseEndpoint

    ns, fresh = own_namespace(stack, request, "ivl")
    run = admin.trigger(MB, conf={**one_ingestor_conf(ns, 100_000), "interval": interval})["dag_run_id"]
    endpoint = HBaseEndpoint(stack.bind_host, stack.thrift_port)

    def results() -> list[dict]:
        with endpoint.session() as conn:
            tables = conn.tables()
            if f"{ns}_{metrics.TABLE}".encode() not in tables:
                return []
            return metrics.run_results(conn, ns, run)

    try:
        # the first batches take the backlog of the start-up: measure the ones after them
        wait_until(f"{batches + 5} micro-batches", lambda: len(results()) >= batches + 5,
                   timeout=300 + batches * seconds * 3)  # fmt: skip
    finally:
        stop = admin.trigger(STOP, conf={"namespace": ns})["dag_run_id"]
        admin.wait_for_run(STOP, stop, timeout=600)
        admin.wait_for_run(MB, run, timeout=300)
    starts = [r["started_at"] for r in results()][5:]
    gaps = [(b - a) / 1000 for a, b in zip(starts, starts[1:], strict=False)]
    median = statistics.median(gaps)
    within = sum(abs(g - seconds) <= 0.2 * seconds for g in gaps) / len(gaps)
    print(f"{interval}: {len(gaps)} gaps, median {median:.2f} s, {within:.0%} within 20%, "
          f"min {min(gaps):.2f} s, max {max(gaps):.2f} s")  # fmt: skip
    warned = f"a {seconds:g} s interval is not held at any rate" in admin.task_log(MB, run, "plan")
    if warned:  # the plan said so before the run: batches follow each other as fast as they end,
        # still paced by the trigger (never closer than the interval)
        assert median >= seconds, (median, gaps)
    else:
        assert abs(median - seconds) <= 0.2 * seconds, gaps


def test_a_real_time_run_stores_each_phone_position_as_it_arrives(admin, stack, request):
    """mode real-time through the REST API: the phones and their endpoint run as in an always-on
    run, and the streaming job runs Spark's real-time mode (one task slot per geo partition) through
    the JVM foreach sink. Every phone's latest position lands, written by the real-time query, and
    the run stops green. Prints how old the newest stored positions are while it runs."""
    import statistics
    import time

    from tests.e2e.story import STOP, wait_until
    from tests.e2e.test_geo_lane import latest_times
    from tormenta.hbase import HBaseEndpoint

    ns, _fresh = own_namespace(stack, request, "rtm")
    devices = 10
    conf = {"namespace": ns, "mode": "real-time", "sources": ["geo"], "geo_endpoints": 1, "geo_devices": devices,
            "geo_rate": 20}  # fmt: skip
    run = admin.trigger(MB, conf=conf)["dag_run_id"]
    endpoint = HBaseEndpoint(stack.bind_host, stack.thrift_port)
    try:
        wait_until("every phone's position in HBase", lambda: len(latest_times(endpoint, ns)) == devices, timeout=420)
        ages = []
        for _ in range(10):  # how far behind the phones the stored positions are, sampled once a second
            now = int(time.time() * 1000)
            ages.append(statistics.median(now - t for t in latest_times(endpoint, ns).values()))
            time.sleep(1)
        print(f"real-time run: median age of the newest stored position per phone {statistics.median(ages):.0f} ms "
              f"(phones post every {devices / conf['geo_rate']:.1f} s each)")  # fmt: skip
        with endpoint.session() as conn:
            batches = {c[b"d:batch"] for _, c in conn.table(f"{ns}_geo_latest").scan(columns=[b"d:batch"])}
        assert batches == {b"realtime-v1"}
        assert "real-time mode" in admin.task_log(MB, run, "stream")
    finally:
        stop = admin.trigger(STOP, conf={"namespace": ns})["dag_run_id"]
        assert admin.wait_for_run(STOP, stop, timeout=600)["state"] == "success"
    final = admin.wait_for_run(MB, run, timeout=300)
    states = {t["task_id"]: t["state"] for t in tis(admin, MB, run)}
    assert final["state"] == "success", states
    mode = admin.request("GET", f"/api/v2/dags/{MB}/details")["params"]["mode"]
    assert mode["schema"]["enum"] == ["always-on", "triggered", "real-time"]

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


def test_a_triggered_run_drains_the_topic_and_ends_success(admin, stack, request):
    ns, fresh = own_namespace(stack, request, "trg")
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "tormenta"), "prepare", "--namespace", ns, "--devices", "10"], check=True,
                   capture_output=True, cwd=REPO_ROOT, timeout=600)  # fmt: skip
    sent = subprocess.run([str(bin_dir / "python"), "-m", "ingestors.runner", "social", "--pages", "pol-01,pol-02",
                           "--rate", "500", "--max-events", "250", "--bootstrap", stack.kafka_bootstrap,
                           "--topic", f"{ns}.social.comments"], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300, check=True)  # fmt: skip
    acked = json.loads(sent.stdout.strip().splitlines()[-1])["acked"]
    assert acked == 250

    run = admin.trigger(MB, conf={"namespace": ns, "mode": "triggered", "max_records_per_batch": 100})["dag_run_id"]
    final = admin.wait_for_run(MB, run, timeout=900)
    states = {t["task_id"]: t["state"] for t in tis(admin, MB, run)}
    assert final["state"] == "success", states
    assert states["ingest"] == "skipped" and states["stream"] == "success" and states["supervise"] == "success"
    assert fresh.count(f"{ns}_social_comments") == acked


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


def test_the_real_time_mode_is_refused_with_the_reason_the_form_gives(admin):
    """Spark 4.2's real-time mode refuses this query's foreachBatch sink: the DAG does not offer it,
    the REST API refuses a trigger asking for it, and the Param's description says why."""
    from tormenta.airflow_api import AirflowApiError

    with pytest.raises(AirflowApiError) as refused:
        admin.trigger(MB, conf={"mode": "real-time"})
    assert refused.value.status == 400, refused.value
    mode = admin.request("GET", f"/api/v2/dags/{MB}/details")["params"]["mode"]
    assert "real-time" not in mode["schema"]["enum"]
    assert "STREAMING_REAL_TIME_MODE.OPERATOR_OR_SINK_NOT_IN_ALLOWLIST" in mode["description"]

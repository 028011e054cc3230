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

"""A batch that starts when its file lands: a source client writes a window's big file and
announces it on Kafka; the batch DAG's asset watcher (in Airflow's triggerer) starts a run that
processes exactly that file. The same announcement again starts a run that processes nothing."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.story import BATCH, own_namespace, tis
from tormenta import batch
from tormenta.settings import REPO_ROOT

pytestmark = pytest.mark.e2e

EVENTS = 3_000


def announce(*args: str, bootstrap: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "ingestors.files", *args, "--bootstrap", bootstrap],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def next_asset_run(admin, seen: set[str], timeout: float = 300) -> str:
    """The id of the DAG's first asset-triggered run not in ``seen``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in admin.dag_runs(BATCH):
            if run["run_type"] == "asset_triggered" and run["dag_run_id"] not in seen:
                return run["dag_run_id"]
        time.sleep(2)
    raise AssertionError(f"no asset-triggered run of {BATCH} within {timeout:.0f}s of the announcement")


def test_an_announced_file_runs_the_batch_once_even_when_announced_again(admin, stack, request):
    ns, fresh = own_namespace(stack, request, "fil")
    subprocess.run([str(Path(sys.executable).parent / "tormenta"), "prepare", "--namespace", ns, "--devices", "10"],
                   check=True, capture_output=True, cwd=REPO_ROOT, timeout=600)  # fmt: skip
    # A window of its own in the past (the batch results' namespace is the DAG's default one).
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=random.randrange(500_000))
    window = (start.strftime("%Y-%m-%dT%H:%MZ"), (start + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%MZ"))
    seen = {r["dag_run_id"] for r in admin.dag_runs(BATCH)}

    doc = announce("--window-start", window[0], "--window-end", window[1], "--events", str(EVENTS),
                   "--source-namespace", ns, bootstrap=stack.kafka_bootstrap)  # fmt: skip
    first = next_asset_run(admin, seen)
    final = admin.wait_for_run(BATCH, first, timeout=900)
    states = {t["task_id"]: t["state"] for t in tis(admin, BATCH, first)}
    assert final["state"] == "success", states
    assert states["agree"] == "skipped"  # a file the micro-batch path never read: nothing to compare
    label = batch.Window(doc_ms(window[0]), doc_ms(window[1])).label
    records = [json.loads(cells[b"d:doc"]) for key, cells in fresh.scan(f"{batch.RESULTS_NAMESPACE}_batch_runs")
               if key.decode().startswith(f"{label}|")]  # fmt: skip
    assert [(r["run_id"], r["source"], r["read"], r["good"]) for r in records] == [(first, "file", EVENTS, EVENTS)]
    ledger = dict(fresh.scan(f"{batch.RESULTS_NAMESPACE}_batch_runs"))[batch.file_key(doc["id"])]
    assert ledger[b"d:run"].decode() == first and ledger[b"d:file"].decode() == doc["file"]

    # The same file announced again: a run starts, finds the file processed, and processes nothing.
    seen.add(first)
    announce("--again", doc["file"], bootstrap=stack.kafka_bootstrap)
    second = next_asset_run(admin, seen)
    admin.wait_for_run(BATCH, second, timeout=600)
    states = {t["task_id"]: t["state"] for t in tis(admin, BATCH, second)}
    assert states["window"] == "skipped" and states["process"] == "skipped", states
    log = admin.task_log(BATCH, second, "window")
    assert f"already processed: {doc['file']} by run {first}" in log, log[-2000:]
    again = [key for key, _ in fresh.scan(f"{batch.RESULTS_NAMESPACE}_batch_runs") if key.decode().startswith(f"{label}|")]
    assert len(again) == 1  # no second record: the window was not processed again


def doc_ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)

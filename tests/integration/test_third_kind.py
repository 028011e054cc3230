"""The third kind of ``tests/third_kind/`` (one folder, named by no other file) runs on the real
stack: ``tormenta prepare`` makes its topic and tables, its ingestor command sends to Kafka, and
the streaming job runs its rules into HBase, every report stored once and counted once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tormenta.settings import REPO_ROOT
from tormenta.spark_conf import spark_submit_command
from tormenta.stack.services import python_env

pytestmark = pytest.mark.integration

THIRD = Path(__file__).parents[1] / "third_kind"
REPORTS = 300


def with_third_kind() -> dict[str, str]:
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join([str(THIRD), str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, env=with_third_kind(), cwd=REPO_ROOT, timeout=timeout)
    assert res.returncode == 0, (cmd, (res.stdout + res.stderr)[-4000:])
    return res


def test_a_third_kind_goes_from_its_ingestor_to_hbase(stack, hbase, unique, tmp_path):
    from tormenta.schema import drop_namespace

    ns = f"k{unique}"
    bin_dir = Path(sys.executable).parent
    try:
        run([str(bin_dir / "tormenta"), "prepare", "--namespace", ns, "--devices", "10"])
        sent = run([str(bin_dir / "python"), "-m", "ingestors.runner", "traffic", "--roads", "4", "--rate", "5000",
                    "--max-events", str(REPORTS), "--bootstrap", stack.kafka_bootstrap,
                    "--topic", f"{ns}.traffic.reports"])  # fmt: skip
        report = json.loads(sent.stdout.strip().splitlines()[-1])
        assert report["ok"] and report["acked"] == REPORTS, report
        stream = spark_submit_command("streaming", [
            "--bootstrap", stack.kafka_bootstrap, "--namespace", ns, "--interval", "1 second",
            "--checkpoint-root", str(tmp_path / "checkpoints"), "--hbase-host", stack.bind_host,
            "--hbase-port", str(stack.thrift_port), "--until-idle"])  # fmt: skip
        run(stream, timeout=900)

        # (this process has the two product kinds only: the tables by their physical names)
        stored = list(hbase.table(f"{ns}_traffic_reports").scan())
        assert len(stored) == REPORTS
        assert {cells[b"d:serious"] for _, cells in stored} == {b"true", b"false"}  # its feature, computed
        roads = dict(hbase.table(f"{ns}_traffic_roads").scan())
        assert sorted(roads) == [f"road-{i:03d}".encode() for i in range(4)]
        assert sum(int(v) for cells in roads.values() for v in cells.values()) == REPORTS

        # Its fail expectation: one report with severity 9 stops the batch, with the reason, for good.
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps({"schema": "traffic.report", "v": 1, "event_id": "bad-severity", "source": "t",
                                   "event_time": int(time.time() * 1000), "sent_at": int(time.time() * 1000),
                                   "road_id": "road-001", "severity": 9, "note": "jam"}) + "\n")  # fmt: skip
        run([str(bin_dir / "python"), "-m", "ingestors.runner", "replay", "--file", str(bad), "--kind",
             "traffic.report", "--bootstrap", stack.kafka_bootstrap, "--topic", f"{ns}.traffic.reports"])  # fmt: skip
        failed = subprocess.run(stream, capture_output=True, text=True, env=with_third_kind(), cwd=REPO_ROOT,
                                timeout=900)  # fmt: skip
        out = failed.stdout + failed.stderr
        assert failed.returncode == 78, out[-4000:]  # EXIT_FATAL: not retried
        assert ("FATAL: query" in out and "expectation 'traffic.report: severity from 0 to 4' (action fail) not met "
                "by 1 record(s)" in out), out[-4000:]  # fmt: skip
        assert len(list(hbase.table(f"{ns}_traffic_reports").scan())) == REPORTS  # nothing of that batch written
    finally:
        drop_namespace(hbase, ns)
        for table in (f"{ns}_traffic_reports", f"{ns}_traffic_roads"):
            if table.encode() in hbase.tables():
                hbase.delete_table(table, disable=True)

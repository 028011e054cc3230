"""Spark reads Kafka through the official connector and writes every event to HBase."""

import subprocess
import sys
from pathlib import Path

import pytest

from tormenta import jvm, smoke
from tormenta.kafka import ensure_topics
from tormenta.spark_conf import DEFAULT_CONF
from tormenta.stack.services import python_env

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_spark_submit_job_writes_every_row(stack, hbase, unique):
    ensure_topics(stack.kafka_bootstrap, [smoke.TOPIC])
    tag = f"it{unique}"
    assert smoke.produce_events(stack.kafka_bootstrap, tag, 1234) == 1234

    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]"]
    for k, v in DEFAULT_CONF.items():
        cmd += ["--conf", f"{k}={v}"]
    cmd += ["--jars", ",".join(map(str, jvm.jar_paths("spark"))), str(REPO / "spark_jobs" / "smoke.py"),
            "--bootstrap", stack.kafka_bootstrap, "--topic", smoke.TOPIC.name, "--tag", tag,
            "--hbase-host", stack.bind_host, "--hbase-port", str(stack.thrift_port)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=python_env())
    assert result.returncode == 0, result.stderr[-4000:]
    assert "TORMENTA_SMOKE_ROWS=1234" in result.stdout

    rows = dict(hbase.table(smoke.TABLE).scan(row_prefix=f"{tag}-".encode()))
    assert len(rows) == 1234
    for i in range(1234):
        cells = rows[f"{tag}-{i:06d}".encode()]
        assert cells[b"d:seq"] == str(i).encode()
        assert cells[b"d:device"] == f"dev-{i % 7}".encode()

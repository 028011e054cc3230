"""Spark reads Kafka through the official connector and writes every event to HBase."""

import subprocess

import pytest

from ingestors.sources.smoke import produce_events
from tormenta import smoke
from tormenta.kafka import ensure_topics
from tormenta.spark_conf import spark_submit_command
from tormenta.stack.services import python_env

pytestmark = pytest.mark.integration


def test_spark_submit_job_writes_every_row(stack, hbase, unique):
    ensure_topics(stack.kafka_bootstrap, [smoke.TOPIC])
    tag = f"it{unique}"
    assert produce_events(stack.kafka_bootstrap, tag, 1234) == 1234

    cmd = spark_submit_command("smoke", [
        "--bootstrap", stack.kafka_bootstrap, "--topic", smoke.TOPIC.name, "--tag", tag,
        "--hbase-host", stack.bind_host, "--hbase-port", str(stack.thrift_port)])  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=python_env())
    assert result.returncode == 0, result.stderr[-4000:]
    assert "TORMENTA_SMOKE_ROWS=1234" in result.stdout

    rows = dict(hbase.table(smoke.TABLE).scan(row_prefix=f"{tag}-".encode()))
    assert len(rows) == 1234
    for i in range(1234):
        cells = rows[f"{tag}-{i:06d}".encode()]
        assert cells[b"d:seq"] == str(i).encode()
        assert cells[b"d:device"] == f"dev-{i % 7}".encode()

"""`tormenta prepare`, as the README writes it, against the running stack: a namespace's topics
(with their retention), its tables and its reference rows; the same function as the micro-batch
DAG's prepare task."""

from __future__ import annotations

import subprocess

import pytest

from tormenta.contracts import TABLES, table_name
from tormenta.kafka import contract_topics
from tormenta.settings import REPO_ROOT

pytestmark = pytest.mark.integration

TORMENTA = str(REPO_ROOT / ".venv" / "bin" / "tormenta")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TORMENTA, "prepare", *args], capture_output=True, text=True, timeout=300)


def test_prepare_makes_a_namespaces_topics_tables_and_reference_rows_and_can_run_again(stack, hbase, unique):
    from confluent_kafka.admin import AdminClient, ConfigResource

    from tormenta.schema import drop_namespace

    ns = f"t{unique}"
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    topics = [s.name for s in contract_topics(ns)]
    try:
        first = run("--namespace", ns, "--devices", "10")
        assert first.returncode == 0, first.stderr
        for topic in topics:
            assert f"topic {topic:<36} created" in first.stdout
        assert f"table {table_name('ref_devices', ns):<36}     10 reference rows" in first.stdout
        existing = set(admin.list_topics(timeout=30).topics)
        assert set(topics) <= existing
        configs = next(iter(admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topics[0])]).values()))
        assert configs.result(30)["retention.ms"].value == str(168 * 3_600_000)
        tables = {t.decode() for t in hbase.tables()}
        assert {table_name(t, ns) for t in TABLES} <= tables
        assert sum(1 for _ in hbase.table(table_name("ref_politicians", ns)).scan()) == 10

        again = run("--namespace", ns, "--devices", "10")  # idempotent: nothing new, same rows
        assert again.returncode == 0, again.stderr
        for topic in topics:
            assert f"topic {topic:<36} exists" in again.stdout
    finally:
        admin.delete_topics(topics)
        drop_namespace(hbase, ns)


def test_prepare_refuses_a_namespace_that_breaks_the_rule(stack):
    done = run("--namespace", "Bad-Name")
    assert done.returncode == 2
    assert "invalid namespace 'Bad-Name': a lower-case letter" in done.stderr


def test_the_readme_prepare_command_runs_as_written(stack):
    """README, "The micro-batch archetype": `.venv/bin/tormenta prepare` (the default namespace)."""
    done = subprocess.run([".venv/bin/tormenta", "prepare"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "topic tormenta.social.comments" in done.stdout
    assert f"table {table_name('ref_politicians'):<36}     10 reference rows" in done.stdout

"""Expectations in both paths on the real stack: the same records through the streaming job (the
micro-batch path) and through the batch job's land + process (the batch path). A warn is counted
and the record kept; a drop is a dead letter whose reason names the expectation; both paths count
the same. (A fail stops the batch: tests/integration/test_third_kind.py.)"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.integration.test_streaming import geo_events, social_events
from tormenta import batch, reference, schema
from tormenta.compare import merge_expectations
from tormenta.contracts import event_row_key, table_name, topic_for
from tormenta.jobs import LandArgs, ProcessArgs
from tormenta.kafka import contract_topics, ensure_topics
from tormenta.spark_conf import spark_submit_command
from tormenta.stack.services import python_env

pytestmark = pytest.mark.integration

EXPECTED = {
    "geo.position: position within a served city": {"action": "warn", "failed": 1},
    "geo.position: speed under 250 km/h": {"action": "drop", "failed": 1},
    "social.comment: lang is es or en": {"action": "warn", "failed": 1},
    "social.comment: text not empty": {"action": "drop", "failed": 1},
}


def submit(job: str, argv: list[str]) -> subprocess.CompletedProcess:
    res = subprocess.run(spark_submit_command(job, argv), capture_output=True, text=True, timeout=900, env=python_env())
    assert res.returncode == 0, res.stderr[-5000:]
    return res


def test_a_warn_is_counted_and_a_drop_dead_lettered_the_same_way_by_both_paths(stack, hbase, unique, tmp_path):
    from confluent_kafka import Producer

    from tormenta.contracts import KINDS

    ns, bns = f"x{unique}", f"x{unique}b"
    social_topic, geo_topic = topic_for(KINDS["social.comment"], ns), topic_for(KINDS["geo.position"], ns)
    try:
        ensure_topics(stack.kafka_bootstrap, contract_topics(ns))
        reference.seed(hbase, device_count=200, namespace=ns)
        social, geo = social_events(60), geo_events(devices=5, steps=6)
        now = int(time.time() * 1000)
        empty = {**social[0], "event_id": "x-empty", "text": "   ", "event_time": now}
        french = {**social[1], "event_id": "x-fr", "lang": "fr", "event_time": now}
        fast = {**geo[0], "event_id": "x-fast", "speed_kmh": 300.0}
        away = {**geo[1], "event_id": "x-away", "lat": 10.0, "lon": 10.0}
        t0 = int(time.time() * 1000) - 1
        producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
        for topic, key, events in ((social_topic, "page_id", [*social, empty, french]), (geo_topic, "device_id", [*geo, fast, away])):
            for e in events:
                producer.produce(topic, key=e[key].encode(), value=json.dumps(e).encode())
        assert producer.flush(30) == 0
        t1 = int(time.time() * 1000) + 1
        sent = len(social) + len(geo) + 4

        # the micro-batch path
        submit("streaming", ["--bootstrap", stack.kafka_bootstrap, "--namespace", ns, "--interval", "1 second",
                             "--checkpoint-root", str(tmp_path / "checkpoints"), "--hbase-host", stack.bind_host,
                             "--hbase-port", str(stack.thrift_port), "--until-idle"])  # fmt: skip
        results = [json.loads(c[b"d:result"]) for key, c in hbase.table(table_name("microbatch_metrics", ns)).scan()
                   if b"d:result" in c and not key.startswith(b"run|")]  # fmt: skip
        assert sum(r["read"] for r in results) == sent
        assert merge_expectations([r["expectations"] for r in results]) == EXPECTED

        # the batch path, over the window the records were sent in
        w = batch.Window(t0, t1)
        parquet = str(tmp_path / "parquet")
        submit("batch", LandArgs(source="kafka", start_ms=t0, end_ms=t1, raw_dir=str(tmp_path / "raw"),
                                 parquet_dir=parquet, bootstrap=stack.kafka_bootstrap,
                                 topics=f"{social_topic},{geo_topic}", parts=2).to_argv())  # fmt: skip
        report = tmp_path / "process.json"
        submit("batch", ProcessArgs(parquet_dir=parquet, namespace=bns, label=w.label, seq=w.seq, source_namespace=ns,
                                    parts=2, write="put", report=str(report), hbase_host=stack.bind_host,
                                    hbase_port=stack.thrift_port).to_argv())  # fmt: skip
        processed = json.loads(report.read_text())
        assert processed["read"] == sent and processed["expectations"] == EXPECTED

        for namespace in (ns, bns):
            dead = {c[b"d:reason"].decode() for _, c in hbase.table(table_name("dead_letters", namespace)).scan()}
            assert dead == {"expectation:text not empty", "expectation:speed under 250 km/h"}, namespace
            # a warned record is kept
            assert hbase.table(table_name("social_comments", namespace)).row(event_row_key("x-fr"))
            assert hbase.table(table_name("geo_positions", namespace)).row(event_row_key("x-away"))
            assert not hbase.table(table_name("social_comments", namespace)).row(event_row_key("x-empty"))
    finally:
        schema.drop_namespace(hbase, ns)
        schema.drop_namespace(hbase, bns)

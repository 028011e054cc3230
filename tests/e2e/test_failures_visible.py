"""Contract 4 through the running Airflow, and what a user sees of a failure without reading logs.

A micro-batch run processes a feed and is stopped; while the pipeline is down, records it has
not read yet are deleted from Kafka (as retention would). The next run's query must fail loudly,
without burning its 50 retries, and the run must say why: the DAG run fails, and its note (on
the run's page in the UI) carries the reason.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from tests.e2e.story import MB, STOP, one_ingestor_conf, own_namespace, ti, wait_until

pytestmark = pytest.mark.e2e


@pytest.mark.contract(4)
def test_offsets_aged_out_fail_the_dag_run_with_the_reason_on_its_page(admin, stack, request):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    from ingestors.producer import EventProducer
    from kinds.social.contract import KIND as SOCIAL
    from tests.e2e.browser import artifacts_dir, logged_in, shoot
    from tests.integration.test_streaming import social_events
    from tormenta.contracts import topic_for
    from tormenta.stack.airflow_setup import passwords_file

    ns, hbase = own_namespace(stack, request, "dl")
    conf = one_ingestor_conf(ns, 300)
    run1 = admin.trigger(MB, conf=conf)["dag_run_id"]
    table = f"{ns}_social_comments"
    wait_until("run 1 events stored", lambda: hbase.count(table) >= 300, timeout=400)
    stop = admin.trigger(STOP, conf={"namespace": ns})["dag_run_id"]
    assert admin.wait_for_run(STOP, stop, timeout=600)["state"] == "success"
    assert admin.wait_for_run(MB, run1, timeout=300)["state"] == "success"

    # while the pipeline is down, 80 records arrive and retention deletes them before it is back
    topic = topic_for(SOCIAL, ns)
    producer = EventProducer(stack.kafka_bootstrap, client_id=f"e2e-{ns}")
    for e in social_events(80, pages=("pol-07",), seed=44):
        producer._producer.produce(topic, key=e["page_id"].encode(), value=json.dumps(e).encode())
    assert producer._producer.flush(30) == 0
    probe = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": "probe"})
    parts = probe.list_topics(topic, timeout=30).topics[topic].partitions
    ends = [TopicPartition(topic, p, probe.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]) for p in parts]
    probe.close()
    admin_client = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})  # kept: its futures need it alive
    for future in admin_client.delete_records(ends).values():
        future.result(30)

    run2 = admin.trigger(MB, conf=conf)["dag_run_id"]
    t0 = time.monotonic()
    final = admin.wait_for_run(MB, run2, timeout=600)
    failed_after_s = time.monotonic() - t0
    assert final["state"] == "failed"
    stream = ti(admin, MB, run2, "stream")
    assert stream["state"] == "failed" and stream["try_number"] == 1  # failed for good, no retry burnt
    note = wait_until("the reason in the run's note", lambda: admin.dag_run(MB, run2).get("note"), timeout=60)
    assert "stream failed (try 1): " in note and "gone from Kafka" in note, note
    assert hbase.count(table) == 300  # nothing skipped, nothing invented

    password = json.loads(passwords_file(stack).read_text())["admin"]
    with logged_in(stack.airflow_url, "admin", password) as page:  # what a user sees, without logs
        page.goto(f"{stack.airflow_url}/dags/{MB}/runs/{urllib.parse.quote(run2)}")
        page.get_by_text("gone from Kafka").first.wait_for(timeout=30_000)
        shoot(page, "microbatch-run-failed-with-note")
    (artifacts_dir().parent / "e2e-data-loss.json").write_text(json.dumps(
        {"failed_after_s": round(failed_after_s, 1), "note": note}, indent=2))  # fmt: skip

"""Ingestors against the real broker: acknowledged means delivered, rejection means failure."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from ingestors.producer import DeliveryError, EventProducer
from ingestors.sources.mobile_geo import GeoHttpSource
from tormenta.contracts import GEO
from tormenta.kafka import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


def consume_all(bootstrap, topic, expect, timeout=30):
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{time.time()}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    out, deadline = [], time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            out += [m for m in c.consume(1000, timeout=0.5) if m.error() is None]
        out += [m for m in c.consume(1000, timeout=2) if m.error() is None]  # nothing extra arrives
    finally:
        c.close()
    return out


def test_oversize_record_is_a_reported_failure(stack, unique):
    topic = f"test.big.{unique}"
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, 1, config={"max.message.bytes": "2000"})])
    p = EventProducer(stack.kafka_bootstrap, "t", conf={"message.timeout.ms": 10_000})
    p.send_raw(topic, b"x" * 100)
    p._producer.flush(10)  # its own request: a rejected batch takes every record in it down
    p.send_raw(topic, os.urandom(50_000))  # incompressible, above the topic limit: rejected
    with pytest.raises(DeliveryError, match="1 rejected"):
        p.close(timeout=20)
    assert p.stats.acked == 1 and p.stats.failed == 1


def test_producer_refuses_weak_settings(stack):
    with pytest.raises(ValueError, match="idempotence"):
        EventProducer(stack.kafka_bootstrap, "t", conf={"enable.idempotence": False})
    with pytest.raises(ValueError, match="acks"):
        EventProducer(stack.kafka_bootstrap, "t", conf={"acks": 1})


def test_geo_endpoint_answers_after_kafka_acknowledged(stack, unique):
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(GEO.topic, 4)])
    producer = EventProducer(stack.kafka_bootstrap, "geo-test", report_successes=True)
    src = GeoHttpSource(producer, port=0, name=f"geo-{unique}")
    threading.Thread(target=src.serve_forever, daemon=True).start()
    stop = threading.Event()
    threading.Thread(target=lambda: [producer.poll(0.05) for _ in iter(stop.is_set, True)], daemon=True).start()
    try:
        url = f"http://127.0.0.1:{src.port}/v1/positions"
        body = [{"device_id": f"dev-{unique}", "trip_id": "t", "seq": i, "lat": 40.4, "lon": -3.7,
                 "speed_kmh": 12.5, "time": int(time.time() * 1000)} for i in range(50)]  # fmt: skip
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read()) == {"accepted": 50}
        assert producer.stats.acked == 50  # acknowledged before the 200 went out
        bad = urllib.request.Request(url, data=b'{"device_id": "x"}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=10)
        assert err.value.code == 400 and "missing_field" in err.value.read().decode()
    finally:
        stop.set()
        src.close()
    got = [m for m in consume_all(stack.kafka_bootstrap, GEO.topic, 10_000, timeout=10)
           if m.key() == f"dev-{unique}".encode()]  # fmt: skip
    assert sorted(json.loads(m.value())["event_id"] for m in got) == sorted(f"dev-{unique}-{i}" for i in range(50))


def test_runner_stops_gracefully_and_reports(stack, unique):
    ensure_topics(stack.kafka_bootstrap, [TopicSpec("tormenta.social.comments", 4)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingestors.runner", "social", "--bootstrap", stack.kafka_bootstrap,
         "--pages", f"page-{unique}", "--rate", "2000", "--name", f"run-{unique}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] and report["sent"] == report["acked"] > 1000 and report["failed"] == 0
    got = [m for m in consume_all(stack.kafka_bootstrap, "tormenta.social.comments", 10**6, timeout=15)
           if m.key() == f"page-{unique}".encode()]  # fmt: skip
    ids = [json.loads(m.value())["event_id"] for m in got]
    assert len(ids) == len(set(ids)) == report["acked"]  # every acknowledged event, exactly once

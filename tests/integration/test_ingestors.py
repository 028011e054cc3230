"""Ingestors against the real broker: acknowledged means delivered, rejection means failure."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from ingestors.producer import DeliveryError, EventProducer
from kinds.geo.contract import KIND as GEO
from kinds.geo.source import GeoHttpSource
from tormenta.devices import device_token, new_key
from tormenta.kafka import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


def consume_all(bootstrap, topic, expect=None, timeout=30):
    """Every record in ``topic``: read up to each partition's end as it is when called (its high
    watermark), not up to a count. A count stops early when the topic holds repeats (a source that
    sends again after a restart), and the records after that point would look lost. ``expect``:
    records that must be there (waited for up to ``timeout``: a producer may still be flushing)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{time.time()}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})  # fmt: skip
    out, deadline = [], time.monotonic() + timeout
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        while True:
            ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
            if expect is None or sum(ends.values()) >= expect or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        pending = {p for p, end in ends.items() if end > 0}
        while pending and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=0.5):
                if m.error() is None:
                    out.append(m)
                    if m.offset() >= ends[m.partition()] - 1:
                        pending.discard(m.partition())
        assert not pending, f"partitions {sorted(pending)} of {topic} not read to their end in {timeout}s"
    finally:
        c.close()
    return out


@pytest.mark.contract(3)
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
    topic = f"test.geo.{unique}"  # its own topic: the shared one may hold millions of records to read past
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, 4)])
    producer = EventProducer(stack.kafka_bootstrap, "geo-test", report_successes=True, topics={GEO.name: topic})
    key = new_key().encode()
    src = GeoHttpSource(producer, port=0, name=f"geo-{unique}", device_key=key)
    threading.Thread(target=src.serve_forever, daemon=True).start()
    stop = threading.Event()
    threading.Thread(target=lambda: [producer.poll(0.05) for _ in iter(stop.is_set, True)], daemon=True).start()
    me, other = f"dev-{unique}", f"other-{unique}"
    try:
        url = f"http://127.0.0.1:{src.port}/v1/positions"
        body = [{"device_id": me, "trip_id": "t", "seq": i, "lat": 40.4, "lon": -3.7,
                 "speed_kmh": 12.5, "time": int(time.time() * 1000), "token": device_token(key, me)}
                for i in range(50)]  # fmt: skip
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read()) == {"accepted": 50}
        assert producer.stats.acked == 50  # acknowledged before the 200 went out
        # a phone posting for another with its own token, or without one: 401, nothing produced
        for token in (device_token(key, me), None, "0" * 32):
            impostor = [{**body[0], "device_id": other, "seq": 1, "token": token}]
            req = urllib.request.Request(url, data=json.dumps([body[1], *impostor]).encode(), method="POST")
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=10)
            assert err.value.code == 401 and f"bad_device_token:{other}" in err.value.read().decode()
        assert producer.stats.sent == 50
        bad = urllib.request.Request(url, data=b'{"device_id": "x"}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=10)
        assert err.value.code == 400 and "missing_field" in err.value.read().decode()
    finally:
        stop.set()
        src.close()
    got = [m for m in consume_all(stack.kafka_bootstrap, topic, 50, timeout=30)
           if m.key() == f"dev-{unique}".encode()]  # fmt: skip
    assert sorted(json.loads(m.value())["event_id"] for m in got) == sorted(f"dev-{unique}-{i}" for i in range(50))
    assert all("token" not in json.loads(m.value()) for m in got)  # the token never reaches Kafka


def test_runner_stops_gracefully_and_reports(stack, unique):
    topic = f"test.social.{unique}"
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, 4)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingestors.runner", "social", "--bootstrap", stack.kafka_bootstrap,
         "--pages", f"page-{unique}", "--rate", "2000", "--name", f"run-{unique}", "--topic", topic],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] and report["sent"] == report["acked"] > 1000 and report["failed"] == 0
    got = [m for m in consume_all(stack.kafka_bootstrap, topic, report["acked"], timeout=30)
           if m.key() == f"page-{unique}".encode()]  # fmt: skip
    ids = [json.loads(m.value())["event_id"] for m in got]
    assert len(ids) == len(set(ids)) == report["acked"]  # every acknowledged event, exactly once


def _rejecting_topic(stack, unique) -> str:
    topic = f"test.reject.{unique}"
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, 1, config={"max.message.bytes": "200"})])
    return topic  # every comment (~400 bytes) is refused by the broker


@pytest.mark.contract(3)
def test_runner_stops_at_the_first_rejection_and_exits_nonzero(stack, unique, tmp_path):
    topic, state = _rejecting_topic(stack, unique), tmp_path / "feed.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingestors.runner", "social", "--bootstrap", stack.kafka_bootstrap,
         "--pages", f"page-{unique}", "--rate", "500", "--topic", topic, "--state-file", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=120)  # no SIGTERM: it must stop by itself
    assert proc.returncode == 1, err[-2000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] is False and report["failed"] >= 1 and report["acked"] == 0, report
    assert "stopping instead of producing on" in err
    assert not state.exists() or json.loads(state.read_text())["next_n"] == {f"page-{unique}": 0}


@pytest.mark.contract(3)
def test_runner_with_arguments_that_cannot_work_exits_78(stack, unique, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ingestors.runner", "replay", "--bootstrap", stack.kafka_bootstrap,
         "--file", str(tmp_path / "missing.jsonl"), "--kind", "social.comment"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 78, proc.stderr[-2000:]
    assert "CONFIG ERROR" in proc.stderr and json.loads(proc.stdout.strip().splitlines()[-1])["ok"] is False


@pytest.fixture
def control(stack, hbase, unique, monkeypatch):
    """A control plane in a throw-away namespace, and the Airflow connections a task would get."""
    from tormenta.contracts import TABLES, table_name
    from tormenta.control import ControlPlane
    from tormenta.hbase import HBaseEndpoint, ensure_table

    ns = f"t{unique}"
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": stack.kafka_bootstrap}}))
    monkeypatch.setenv("AIRFLOW_CONN_HBASE_DEFAULT",
                       json.dumps({"conn_type": "generic", "host": stack.bind_host, "port": stack.thrift_port}))
    ensure_table(hbase, table_name("control", ns), TABLES["control"])
    yield ControlPlane(HBaseEndpoint(stack.bind_host, stack.thrift_port), ns)
    hbase.delete_table(table_name("control", ns), disable=True)


@pytest.mark.contract(3)
def test_ingestor_task_failure_is_never_turned_into_success_by_a_retry(stack, unique, control):
    """Kafka refuses the records: the task fails (retry); a retry that finds the run stopping
    fails for good instead of reporting success, and the failure stays in the control plane
    until a try ends cleanly."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from tormenta.providers.ingestor import IngestorError, IngestorOperator

    def task(topic, *extra):
        spec = {"name": f"social-{unique}", "module": "ingestors.runner", "pulls": True,
                "argv": ["social", "--pages", f"page-{unique}", "--rate", "500", "--topic", topic, *extra]}  # fmt: skip
        return IngestorOperator(task_id="ingest", spec=spec, namespace=control.namespace)

    run_id, name = f"manual__{unique}", f"social-{unique}"
    context = {"run_id": run_id, "dag": SimpleNamespace(dag_id="t"), "ti": SimpleNamespace(try_number=1)}
    control.begin(run_id)
    with pytest.raises(IngestorError, match="died with exit code 1"):
        task(_rejecting_topic(stack, unique)).execute(context)
    assert control.state(run_id)["failed"][name]["rc"] == 1

    control.request_stop(run_id, "stop DAG")  # the retry comes after the stop request
    with pytest.raises(AirflowFailException, match="failed on a previous try"):
        task("unused").execute(context)
    state = control.state(run_id)
    assert name in state["stopped"] and state["failed"][name]["rc"] == 1  # the stop goes on; the failure stays

    good = f"test.good.{unique}"
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(good, 1)])
    run2 = f"manual__{unique}_2"
    control.begin(run2)
    control.mark_failed(run2, name, {"rc": 1})
    out = task(good, "--max-events", "50").execute({**context, "run_id": run2})  # a clean end clears it
    assert out["rc"] == 0 and name not in control.state(run2)["failed"]


def _raw_http(port: int, request: bytes, timeout: float = 10) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out and len(out.split(b"\r\n\r\n", 1)[1]) >= int(
                    (re.search(rb"Content-Length: (\d+)", out) or [0, b"0"])[1]):  # fmt: skip
                break
        return out


def test_geo_endpoint_answers_malformed_requests_with_4xx_and_bounds_its_workers(stack, unique):
    import socket

    producer = EventProducer(stack.kafka_bootstrap, "geo-test", report_successes=True)
    src = GeoHttpSource(producer, port=0, name=f"geo-{unique}", request_timeout=6, workers=2, backlog=2)
    threading.Thread(target=src.serve_forever, daemon=True).start()
    try:
        post = b"POST /v1/positions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        assert b" 400 " in _raw_http(src.port, post + b"Content-Length: abc\r\n\r\n")
        deep = b"[" * 100_000 + b"]" * 100_000
        reply = _raw_http(src.port, post + b"Content-Length: %d\r\n\r\n" % len(deep) + deep)
        assert b" 400 " in reply and b"invalid_json" in reply
        neg = json.dumps({"device_id": "a", "trip_id": "t", "seq": -1, "lat": 1, "lon": 1, "speed_kmh": 1,
                          "time": 1}).encode()  # fmt: skip
        reply = _raw_http(src.port, post + b"Content-Length: %d\r\n\r\n" % len(neg) + neg)
        assert b" 400 " in reply and b"negative:seq" in reply
        # 4 idle connections take the 2 workers and the 2 queue slots: the next one is refused at once
        deadline = time.monotonic() + 5  # the reply above can arrive before its worker let go of its slot
        while src.server.in_use and time.monotonic() < deadline:
            time.sleep(0.05)
        idle = [socket.create_connection(("127.0.0.1", src.port)) for _ in range(4)]
        while src.server.in_use < 4 and time.monotonic() < deadline + 5:
            time.sleep(0.05)
        assert src.server.in_use == 4
        busy = _raw_http(src.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert busy.startswith(b"HTTP/1.1 503"), busy[:200]
        time.sleep(13)  # the socket timeout lets the idle clients go (two rounds of two workers)
        reply = _raw_http(src.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        for s in idle:
            s.close()
    finally:
        src.close()


@pytest.mark.contract(2)
def test_acknowledged_events_survive_a_producer_kill_and_a_broker_kill(stack, unique, tmp_path):
    """kill -9 of an ingestor, then of the broker under load: every event Kafka acknowledged is
    in the topic, and the only repeats are the source's own re-sends after a restart (never a
    record written twice by the producer's retries: enable.idempotence)."""
    from tormenta import stack as stack_mod

    topic, state = f"test.chaos.{unique}", tmp_path / "feed.json"
    pages = [f"page-{unique}-a", f"page-{unique}-b"]
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, 4)])
    cmd = [sys.executable, "-m", "ingestors.runner", "social", "--bootstrap", stack.kafka_bootstrap,
           "--pages", ",".join(pages), "--rate", "400", "--topic", topic, "--state-file", str(state)]  # fmt: skip

    def start():
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = start()
    time.sleep(5)
    first.kill()  # the producer dies with records in flight
    first.wait()
    second = start()  # resumes from the last position Kafka acknowledged in full
    time.sleep(4)
    os.kill(stack_mod.manager().running("kafka").pid, signal.SIGKILL)  # the broker dies under load
    time.sleep(2)
    stack_mod.up()  # and comes back (the stack manager restarts what is not running)
    time.sleep(5)
    second.send_signal(signal.SIGTERM)
    out, err = second.communicate(timeout=120)
    while second.returncode != 0:  # Kafka was away longer than message.timeout.ms: resume again
        assert "stopping instead of producing on" in err, err[-3000:]
        second = start()
        time.sleep(20)  # past where the failed one got, so the final position covers all it sent
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=120)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] and report["acked"] > 0, report

    position = json.loads(state.read_text())["next_n"]  # everything before it was acknowledged
    expected = {f"{page}-c{n:012d}" for page in pages for n in range(position[page])}
    assert len(expected) > 2000
    got = consume_all(stack.kafka_bootstrap, topic, len(expected), timeout=90)
    ids = [json.loads(m.value())["event_id"] for m in got]
    assert set(ids) == expected  # nothing acknowledged is missing, nothing unknown appeared
    values = [m.value() for m in got]
    assert len(values) == len(set(values)), "a record was written twice by the producer's retries"

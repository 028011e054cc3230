"""The micro-batch archetype end to end on the real stack: ingest -> Kafka -> Spark -> HBase.

Each test gets its own topics, HBase namespace and checkpoint, runs the real streaming job
through spark-submit, and checks HBase row by row against a Python reference.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from ingestors.fleet import make_fleet
from ingestors.producer import EventProducer
from kinds.geo.source import to_event
from kinds.social.rules import sentiment_of
from kinds.social.source import PageFeed
from tormenta import reference, schema
from tormenta.contracts import TABLES, event_row_key, minute_bucket, table_name
from tormenta.geo import process_device
from tormenta.kafka import TopicSpec, ensure_topics
from tormenta.spark_conf import spark_submit_command
from tormenta.stack.services import python_env

pytestmark = pytest.mark.integration


class Env:
    def __init__(self, stack, hbase, unique, tmp_path):
        self.stack, self.hbase = stack, hbase
        self.ns = f"t{unique}"
        self.social_topic, self.geo_topic = f"test.social.{unique}", f"test.geo.{unique}"
        self.checkpoints = tmp_path / "checkpoints"
        ensure_topics(stack.kafka_bootstrap, [TopicSpec(self.social_topic, 4), TopicSpec(self.geo_topic, 4)])
        reference.seed(hbase, device_count=200, namespace=self.ns)
        self.producer = EventProducer(stack.kafka_bootstrap, client_id=f"test-{unique}")

    def args(self, interval="1 second", max_offsets=100_000, extra=()):
        return [
            "--bootstrap", self.stack.kafka_bootstrap, "--interval", interval,
            "--max-offsets-per-trigger", str(max_offsets), "--checkpoint-root", str(self.checkpoints),
            "--query-name", "q", "--namespace", self.ns,
            "--topic-map", f"social.comment={self.social_topic},geo.position={self.geo_topic}",
            "--hbase-host", self.stack.bind_host, "--hbase-port", str(self.stack.thrift_port), *extra,
        ]  # fmt: skip

    def run(self, **kw) -> subprocess.CompletedProcess:
        cmd = spark_submit_command("streaming", [*self.args(**kw), "--until-idle"])
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=python_env())
        assert res.returncode == 0, res.stderr[-5000:]
        return res

    def start(self, master: str = "local[2]", **kw) -> subprocess.Popen:
        cmd = spark_submit_command("streaming", [*self.args(**kw), "--run-seconds", "600"], master=master)
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=python_env(), start_new_session=True)  # fmt: skip

    def send(self, topic, events, key_field):
        for e in events:
            self.producer._producer.produce(topic, key=e[key_field].encode(), value=json.dumps(e).encode())
        assert self.producer._producer.flush(30) == 0

    def send_social(self, events):
        self.send(self.social_topic, events, "page_id")

    def send_geo(self, events):
        self.send(self.geo_topic, events, "device_id")

    def send_raw(self, topic, value: bytes, key: bytes = b"k"):
        self.producer._producer.produce(topic, key=key, value=value)
        assert self.producer._producer.flush(30) == 0

    def table(self, logical):
        return self.hbase.table(table_name(logical, self.ns))

    def snapshot(self):
        """Every cell of every result table, with timestamps (metrics excluded: they time runs)."""
        return {
            logical: list(self.table(logical).scan(include_timestamp=True))
            for logical in TABLES
            if logical != "microbatch_metrics"
        }

    def metrics(self):
        return [json.loads(c[b"d:result"]) for _, c in self.table("microbatch_metrics").scan() if b"d:result" in c]

    def close(self):
        schema.drop_namespace(self.hbase, self.ns)


@pytest.fixture
def env(stack, hbase, unique, tmp_path):
    e = Env(stack, hbase, unique, tmp_path)
    yield e
    e.close()


def social_events(n, pages=("pol-01", "pol-02", "pol-03"), seed=3):
    feed = PageFeed(list(pages), seed=seed, name="test-feed")
    out = []
    while len(out) < n:
        out += feed.poll(n - len(out))
    now = int(time.time() * 1000)
    for e in out:
        e["sent_at"] = now
    return out


def geo_events(devices=20, steps=15, seed=5):
    import random

    rng = random.Random(seed)
    out = []
    for phone, bounds in make_fleet(devices, seed, first_seq=0):
        for _ in range(steps):
            pos = phone.step(2.0, rng, bounds)
            pos["time"] -= 1000 * (steps - phone.seq)  # a track in the past, in order
            e = to_event(pos, "test-fleet")
            e["sent_at"] = int(time.time() * 1000)
            out.append(e)
    return out


def expected_social(events):
    per_minute = defaultdict(lambda: [0, 0, 0.0])
    for e in events:
        agg = per_minute[(e["page_id"], minute_bucket(e["event_time"]))]
        agg[0] += 1
        agg[1] += len([w for w in e["text"].split() if w.startswith("@")])
        agg[2] += sentiment_of(e["text"])
    return per_minute


def stored_minutes(env):
    out = {}
    for key, cells in env.table("social_minute").scan():
        page, minute = key.decode().split("|")
        parts = [json.loads(v) for v in cells.values()]
        out[(page, minute)] = [sum(p["comments"] for p in parts), sum(p["mentions"] for p in parts),
                               sum(p["sentiment_sum"] for p in parts)]  # fmt: skip
    return out


def stored_trip_distance(env):
    return {k.decode(): sum(json.loads(v)["distance_m"] for v in cells.values())
            for k, cells in env.table("geo_trips").scan()}  # fmt: skip


def expected_trip_distance(events):
    by_device = defaultdict(list)
    for e in events:
        by_device[e["device_id"]].append(e)
    trips = defaultdict(float)
    for positions in by_device.values():
        for trip, c in process_device(positions, None, reference.zones()).trips.items():
            trips[trip] += c["distance_m"]
    return trips


@pytest.mark.contract(10)
def test_good_and_poison_input(env):
    social = social_events(600)
    geo = geo_events()
    env.send_social(social)
    env.send_geo(geo)
    now = int(time.time() * 1000)
    good = dict(social[0])
    poison = {
        b"{not json": "invalid_json",
        b"[1, 2, 3]": "invalid_json",
        json.dumps({k: v for k, v in good.items() if k != "author"}).encode(): "missing_field:author",
        json.dumps({**good, "event_id": "p-wt", "event_time": "yesterday"}).encode(): "wrong_type:event_time",
        json.dumps({**good, "event_id": "p-extra", "colour": "red"}).encode(): "unexpected_field:colour",
        json.dumps({**good, "event_id": "  "}).encode(): "empty_key:event_id",
        json.dumps({**good, "event_id": "p-big", "text": "x" * 20000}).encode(): "oversize",
        json.dumps({**good, "event_id": "p-fut", "event_time": now + 3600_000}).encode(): "event_time_in_future",
        json.dumps({**good, "event_id": "p-old", "event_time": now - 30 * 86400_000}).encode(): "event_time_too_old",
        json.dumps({**good, "event_id": "p-v2", "v": 2}).encode(): "unknown_schema_version",
        json.dumps(good).encode(): "duplicate_event_id",  # the same comment sent twice
        json.dumps({**good, "event_id": "p-key"}).encode(): "key_mismatch:page_id",  # keyed "k", not its page
    }
    for raw, reason in poison.items():
        # a copy of an event travels with the event's key (same partition); the rest as "k"
        key = good["page_id"].encode() if reason == "duplicate_event_id" else b"k"
        env.send_raw(env.social_topic, raw, key=key)
    bad_geo = json.dumps({**geo[0], "event_id": "g-lat", "lat": 123.0}).encode()
    env.send_raw(env.geo_topic, bad_geo)
    produced = len(social) + len(geo) + len(poison) + 1

    env.run()

    # every good event stored exactly once, with its enrichment
    comments = dict(env.table("social_comments").scan())
    assert set(comments) == {event_row_key(e["event_id"]) for e in social}
    sample = comments[event_row_key(social[0]["event_id"])]
    assert sample[b"d:party"] == reference.POLITICIANS[social[0]["page_id"]]["party"].encode()
    positions = dict(env.table("geo_positions").scan())
    assert set(positions) == {event_row_key(e["event_id"]) for e in geo}

    # every poison record dead-lettered with its reason and Kafka coordinates
    dead = {c[b"d:value"]: c for _, c in env.table("dead_letters").scan()}
    assert {v: c[b"d:reason"].decode() for v, c in dead.items() if v != bad_geo} == {
        raw[:65536]: reason for raw, reason in poison.items()
    }
    assert dead[bad_geo][b"d:reason"] == b"out_of_range:lat"
    assert dead[bad_geo][b"d:topic"] == env.geo_topic.encode()

    # good + dead == produced, per batch and overall
    metrics = env.metrics()
    assert sum(m["read"] for m in metrics) == produced
    assert sum(m["good"] for m in metrics) == len(social) + len(geo)
    assert sum(m["dead"] for m in metrics) == len(poison) + 1

    # business rules: the same numbers as the Python reference
    got, want = stored_minutes(env), expected_social(social)
    assert set(got) == set(want)
    for k in want:
        assert got[k][:2] == want[k][:2], k
        assert got[k][2] == pytest.approx(want[k][2], abs=1e-6)
    assert stored_trip_distance(env) == pytest.approx(expected_trip_distance(geo), rel=1e-6)
    latest = {k.decode(): c for k, c in env.table("geo_latest").scan()}
    last_by_device = {}
    for e in sorted(geo, key=lambda e: e["event_time"]):
        last_by_device[e["device_id"]] = e
    assert {d: c[b"d:event_id"].decode() for d, c in latest.items()} == {
        d: e["event_id"] for d, e in last_by_device.items()
    }


def triggers(env, exclude=()) -> list[tuple[int, int]]:
    """(epoch ms the trigger fired, ms it took) of each stored batch, from Spark's progress."""
    import datetime as dt

    out = []
    for _, cells in env.table("microbatch_metrics").scan():
        if b"d:progress" in cells and b"d:result" in cells:
            if json.loads(cells[b"d:result"])["label"] in exclude:
                continue
            progress = json.loads(cells[b"d:progress"])
            stamp = dt.datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00"))
            out.append((int(stamp.timestamp() * 1000), progress["durationMs"]["triggerExecution"]))
    return sorted(out)


def waited_for_the_interval(fired: list[tuple[int, int]], interval_ms: int) -> int:
    """How many triggers fired on the interval's clock grid after the previous batch ended early.

    Spark's processingTime trigger waits for the next multiple of the interval (epoch-aligned)
    unless the previous batch overran it. Raises if a trigger fired off that grid after a wait."""
    waited = 0
    for (start, took), (following, _) in zip(fired, fired[1:], strict=False):
        grid = start - start % interval_ms + interval_ms
        if start + took < grid - 100:  # ended well before the next grid point: it must wait for it
            assert grid <= following < grid + 250, (fired, start, grid, following)
            waited += 1
    return waited


@pytest.mark.contract(1)
@pytest.mark.contract(9)
def test_interval_change_continues_and_replay_is_byte_identical(env):
    first = social_events(300, seed=11)
    env.send_social(first)
    env.send_geo(geo_events(devices=10, steps=10, seed=12))
    env.run(interval="1 second")
    batches_first = {m["label"] for m in env.metrics()}

    second = social_events(300, pages=("pol-04", "pol-05"), seed=13)
    env.send_social(second + first[:5])  # five comments the source sent again, in a later batch
    # Same checkpoint, new interval: it continues where it stopped, and the new interval is the
    # one observed. At most 50 records a batch make 7 batches; Spark's progress says when each
    # trigger fired, and a batch that ended early waits for the next multiple of 5 s (were the
    # interval ignored, it would fire on the default's 1 s grid, on a 5 s point only by chance).
    env.run(interval="5 seconds", max_offsets=50)
    metrics = env.metrics()
    assert {m["label"] for m in metrics} > batches_first
    fired = triggers(env, exclude=batches_first)
    assert waited_for_the_interval(fired, 5_000) >= 3, fired
    assert sum(m["good"] for m in metrics) == len(first) + len(second) + 100
    dead = [c[b"d:reason"] for _, c in env.table("dead_letters").scan()]
    assert dead == [b"duplicate_event_id"] * 5  # recognised across batches, counted once
    assert {k: v[0] for k, v in stored_minutes(env).items()} == {
        k: v[0] for k, v in expected_social(first + second).items()
    }

    before = env.snapshot()
    commits = env.checkpoints / "q" / "v1" / "commits"
    last = max(int(p.name) for p in commits.iterdir() if p.name.isdigit())
    (commits / str(last)).unlink()  # forget that the last batch finished: it runs again
    (commits / f".{last}.crc").unlink(missing_ok=True)  # Hadoop's checksum of that entry
    res = env.run(interval="2 seconds")
    replayed = [json.loads(line) for line in res.stdout.splitlines() if line.startswith('{"batch"')]
    assert [b["batch"] for b in replayed] == [last], res.stdout[-3000:]  # really replayed
    assert env.snapshot() == before


@pytest.mark.contract(1)
def test_kill_9_driver_mid_run_loses_and_doubles_nothing(env):
    social = social_events(6000, seed=21)
    env.send_social(social)
    proc = env.start(max_offsets=500)  # ~12 batches
    try:
        deadline = time.monotonic() + 300
        while len(env.metrics()) < 3:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver JVM and its Python, no shutdown hooks
        proc.wait(30)
    done = sum(m["good"] for m in env.metrics())
    assert 0 < done < len(social)

    env.run(max_offsets=500)  # restart on the same checkpoint
    comments = dict(env.table("social_comments").scan())
    assert set(comments) == {event_row_key(e["event_id"]) for e in social}
    assert list(env.table("dead_letters").scan()) == []  # nothing was seen as a duplicate
    got, want = stored_minutes(env), expected_social(social)
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in want.items()}


@pytest.mark.contract(10)
def test_every_bad_input_class_through_a_running_query(env, unique):
    """Each class of bad input is a dead letter with its reason, the running query keeps going,
    the same event id under two keys is stored and counted once, and good + dead == produced."""
    from tests.bad_input import cases, enc
    from tests.bad_input import social as social_event

    proc = env.start(max_offsets=5000)
    try:
        now = int(time.time() * 1000)
        before = social_events(200, seed=31)
        env.send_social(before)
        bad = cases(now, prefix=f"{unique}-")
        for _, kind, raw, key, _ in bad:
            env.producer._producer.produce(env.social_topic if kind == "social" else env.geo_topic, key=key, value=raw)
        twin = social_event(event_id=f"{unique}-twin", event_time=now, sent_at=now, page_id="pol-01")
        env.send_raw(env.social_topic, enc(twin), key=b"pol-01")
        env.send_raw(env.social_topic, enc({**twin, "page_id": "pol-02"}), key=b"pol-02")
        after = social_events(200, pages=("pol-05",), seed=32)
        env.send_social(after)
        produced = len(before) + len(bad) + 2 + len(after)

        deadline = time.monotonic() + 300
        while sum(m["read"] for m in env.metrics()) < produced:
            assert proc.poll() is None, proc.stderr.read()[-3000:]  # the query never stops on bad input
            assert time.monotonic() < deadline, "records not processed"
            time.sleep(1)
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    metrics = env.metrics()
    assert sum(m["read"] for m in metrics) == produced
    assert sum(m["good"] for m in metrics) == len(before) + len(after) + 1  # one twin
    assert sum(m["dead"] for m in metrics) == len(bad) + 1
    dead = [c for _, c in env.table("dead_letters").scan()]
    by_value = {c[b"d:value"]: c[b"d:reason"].decode() for c in dead if c[b"d:reason"] != b"duplicate_event_id"}
    for name, _, raw, _, reason in bad:
        assert by_value.get(raw or b"") == reason, name
    assert [c[b"d:reason"] for c in dead].count(b"duplicate_event_id") == 1  # the second twin
    comments = dict(env.table("social_comments").scan())
    assert event_row_key(twin["event_id"]) in comments
    got = stored_minutes(env)
    assert sum(v[0] for v in got.values()) == len(before) + len(after) + 1  # the twin counted once


@pytest.mark.contract(4)
def test_offsets_aged_out_while_the_job_was_down_fail_the_task_loudly_and_for_good(env, monkeypatch):
    """Retention deletes records the checkpoint has not read yet: the query must not skip them
    silently (failOnDataLoss stays true), and the Airflow task must fail at once with the reason
    instead of retrying the same failure for an hour and a half."""
    from airflow.sdk.exceptions import AirflowFailException
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    from tormenta.providers.spark import SparkJobOperator
    from tormenta.stack.airflow_setup import connections

    env.send_social(social_events(120))
    env.run()  # the checkpoint now points at the end of what was there
    env.send_social(social_events(80, pages=("pol-05",), seed=11))  # arrives while the job is down ...
    probe = Consumer({"bootstrap.servers": env.stack.kafka_bootstrap, "group.id": "probe"})
    ends = [TopicPartition(env.social_topic, p, probe.get_watermark_offsets(TopicPartition(env.social_topic, p))[1])
            for p in range(4)]  # fmt: skip
    probe.close()
    admin = AdminClient({"bootstrap.servers": env.stack.kafka_bootstrap})
    for future in admin.delete_records(ends).values():  # ... and is aged out before it comes back
        future.result(30)

    spark_conn = {k: v for k, v in connections(env.stack)["spark_default"].items() if k != "description"}
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(spark_conn))
    monkeypatch.setenv("PATH", python_env()["PATH"])
    op = SparkJobOperator(task_id="stream", job="streaming", application_args=[*env.args(), "--until-idle"])
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    assert "gone from Kafka" in str(err.value) and "not retried" in str(err.value), str(err.value)
    assert len(list(env.table("social_comments").scan())) == 120  # the lost records were not invented


def submit(env, script=None, extra=()) -> subprocess.CompletedProcess:
    """spark-submit the streaming job until idle; ``.output``: what it printed (spark-submit
    passes the Python driver's stdout and stderr on as its own stdout)."""
    cmd = spark_submit_command("streaming", [*env.args(extra=extra), "--until-idle"])
    if script:
        cmd[next(i for i, a in enumerate(cmd) if a.endswith("streaming.py"))] = str(script)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=python_env())
    res.output = res.stdout + res.stderr
    return res


@pytest.mark.contract(5)
def test_changed_rules_refuse_the_old_checkpoint_with_a_clear_error(env):
    from pathlib import Path

    changed = Path(__file__).parent / "jobs" / "streaming_changed_rules.py"
    env.send_social(social_events(60))
    env.run()
    res = submit(env, changed)
    assert res.returncode == 78, res.output[-3000:]
    assert "FATAL: the query changed since its checkpoint" in res.output and "(processing differ)" in res.output
    env.run()  # the code that wrote the checkpoint still runs on it
    res = submit(env, changed, extra=("--query-version", "2"))  # a new version: its own checkpoint
    assert res.returncode == 0, res.output[-3000:]


@pytest.mark.contract(6)
def test_a_second_driver_on_a_running_checkpoint_fails_at_once(env):
    lock = env.checkpoints / "q" / "v1" / "tormenta.lock"
    first = env.start()
    try:
        deadline = time.monotonic() + 300
        while not (lock.exists() and lock.read_text()) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        assert first.poll() is None and json.loads(lock.read_text())["query"] == "q"
        res = submit(env)
        assert res.returncode == 78, res.output[-3000:]
        assert "is in use by another running query" in res.output
        other = submit(env, extra=("--query-name", "q2"))  # another query, its own checkpoint, same tables
        assert other.returncode == 78, other.output[-3000:]
        assert f"FATAL: namespace {env.ns} is in use by another running query" in other.output
        assert first.poll() is None, "the running query must not be disturbed"
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(120)
    assert submit(env).returncode == 0  # the lock went with the driver


def test_a_stream_refuses_a_namespace_that_holds_batch_results(env):
    from tormenta.control import ControlPlane
    from tormenta.hbase import HBaseEndpoint

    control = ControlPlane(HBaseEndpoint(env.stack.bind_host, env.stack.thrift_port), env.ns)
    assert control.claim_role("batch") == "batch"  # as the batch job marks its results namespace
    res = submit(env)
    assert res.returncode == 78, res.output[-3000:]
    assert f"FATAL: namespace '{env.ns}' holds batch results; the stream path cannot write there" in res.output


def _cmdline(proc) -> str:
    import psutil

    try:
        return " ".join(proc.cmdline())
    except psutil.Error:  # a zombie, or a child that just ended
        return ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _start_logged(env, log_path, max_offsets: int):
    """The streaming job in a session of its own (as the operator starts it), its output in a file."""
    cmd = spark_submit_command("streaming", [*env.args(max_offsets=max_offsets), "--run-seconds", "900"])
    with log_path.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=python_env(), start_new_session=True)
    return proc, log_path


def _wait_for_batches(env, proc, n: int) -> None:
    deadline = time.monotonic() + 300
    while len(env.metrics()) < n:
        assert proc.poll() is None, "the driver ended before its batches"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.5)


def _committed(env) -> int:
    commits = env.checkpoints / "q" / "v1" / "commits"
    return max(int(p.name) for p in commits.iterdir() if p.name.isdigit())


def _resumes_and_holds_each_event_once(env, social, last_commit: int) -> None:
    res = env.run(max_offsets=500)  # the next run, on the same checkpoint
    resumed = [json.loads(line)["batch"] for line in res.stdout.splitlines() if line.startswith('{"batch"')]
    assert resumed and min(resumed) == last_commit + 1, (last_commit, resumed)  # from the checkpoint, not anew
    assert set(dict(env.table("social_comments").scan())) == {event_row_key(e["event_id"]) for e in social}
    assert list(env.table("dead_letters").scan()) == []  # nothing seen twice
    got, want = stored_minutes(env), expected_social(social)
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in want.items()}


@pytest.mark.contract(15)
def test_sigterm_stops_the_query_at_once_and_the_next_run_resumes(env, tmp_path):
    """What Airflow's on_kill does when the stream task is marked failed: SIGTERM to the Python
    driver. The query stops without draining, the whole driver exits, the checkpoint lock goes,
    and the next run resumes from the checkpoint with every event once."""
    import psutil

    social = social_events(6000, seed=41)
    env.send_social(social)
    proc, out = _start_logged(env, tmp_path / "driver.log", max_offsets=500)
    try:
        _wait_for_batches(env, proc, 3)
        driver = next(c for c in psutil.Process(proc.pid).children(recursive=True) if "streaming.py" in _cmdline(c))
        driver.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        deadline = time.monotonic() + 30
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_alive(proc.pid), "a process of the driver outlived it"
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    log_text = out.read_text(errors="replace")
    assert rc == 143, log_text[-3000:]
    assert "stopping the query now (SIGTERM received), without draining" in log_text
    assert "did not stop within" not in log_text  # stopped by itself, not by the last-resort timer
    assert sum(m["good"] for m in env.metrics()) < len(social)  # it really stopped before the end
    _resumes_and_holds_each_event_once(env, social, _committed(env))


@pytest.mark.contract(15)
def test_a_driver_whose_starter_is_killed_stops_itself(env, tmp_path):
    """The Airflow task process is SIGKILLed (5 s after its SIGTERM, or a worker dies): the driver,
    in a session of its own, notices its starter is gone and stops; no orphan keeps writing."""
    import psutil

    social = social_events(6000, seed=42)
    env.send_social(social)
    out = tmp_path / "driver.log"
    cmd = spark_submit_command("streaming", [*env.args(max_offsets=500), "--run-seconds", "600"])
    starter_code = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:], start_new_session=True))"
    with out.open("w") as f:
        starter = subprocess.Popen([sys.executable, "-c", starter_code, *cmd], stdout=f, stderr=subprocess.STDOUT,
                                   env=python_env())  # fmt: skip
    try:
        jvm = None
        deadline = time.monotonic() + 120
        while jvm is None and time.monotonic() < deadline:
            jvm = next(iter(psutil.Process(starter.pid).children()), None)
            time.sleep(0.2)
        assert jvm is not None
        _wait_for_batches(env, starter, 3)
        starter.kill()  # SIGKILL, to the starter alone, as the task supervisor's escalation does
        starter.wait(10)
        deadline = time.monotonic() + 60
        while _group_alive(jvm.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_alive(jvm.pid), "the driver outlived the process that started it"
    finally:
        if jvm is not None and _group_alive(jvm.pid):
            os.killpg(jvm.pid, signal.SIGKILL)
    log_text = out.read_text(errors="replace")
    assert f"stopping the query now (the process that started this driver (pid {starter.pid}) is gone)" in log_text, log_text[-3000:]
    assert "did not stop within" not in log_text
    _resumes_and_holds_each_event_once(env, social, _committed(env))


@pytest.mark.contract(7)
def test_hbase_restarted_during_writes_keeps_every_write_and_lands_the_retried_batch_once(env, tmp_path):
    """HBase (master, region server and ZooKeeper: one standalone process) and its Thrift server
    are restarted while the query writes. Whatever the driver does meanwhile (wait out the
    outage in the HBase client's retries, or fail its batch and be restarted on its checkpoint,
    as the task's Airflow retry would), every write acknowledged before the restart is still
    there and the batch cut short lands once: each event stored and counted exactly once."""
    from tormenta import stack as stack_mod
    from tormenta.hbase import HBaseEndpoint

    social = social_events(8000, seed=43)
    env.send_social(social)
    proc, out = _start_logged(env, tmp_path / "driver.log", max_offsets=400)
    try:
        _wait_for_batches(env, proc, 3)
        stored_before = {k for k, _ in env.table("social_comments").scan()}
        assert 0 < len(stored_before) < len(social)
        stopped = stack_mod.down(["hbase-thrift", "hbase"])  # while batches are being written
        assert stopped == ["hbase-thrift", "hbase"]
        time.sleep(5)  # the driver's writes meet a dead HBase
        stack_mod.up()
        env.hbase = HBaseEndpoint(env.stack.bind_host, env.stack.thrift_port).connect()  # the old socket died
        deadline = time.monotonic() + 600
        while proc.poll() is None and sum(m["read"] for m in env.metrics()) < len(social):
            assert time.monotonic() < deadline, "the driver neither caught up nor failed"
            time.sleep(2)
        rc = proc.poll()
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    log_text = out.read_text(errors="replace")
    assert rc in (None, 1), log_text[-3000:]  # running, or failed to be retried: never "fatal", never success
    env.run(max_offsets=400)  # the retry (or, if the driver survived, a no-op restart) on the same checkpoint
    comments = {k for k, _ in env.table("social_comments").scan()}
    assert stored_before <= comments  # every acknowledged write survived the restart
    assert comments == {event_row_key(e["event_id"]) for e in social}
    assert list(env.table("dead_letters").scan()) == []  # the batch cut short was not seen as duplicates
    got, want = stored_minutes(env), expected_social(social)
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in want.items()}
    print(json.dumps({"driver_survived": rc is None, "stored_before_restart": len(stored_before)}))


def test_a_triggered_query_takes_what_kafka_holds_in_bounded_batches_then_ends(env):
    """--mode triggered (the DAG's mode Param): Spark's availableNow trigger. The query ends by
    itself once it processed what the topics held when it started, every batch within
    maxOffsetsPerTrigger, every event stored once."""
    env.send_social(social_events(300))
    cmd = spark_submit_command("streaming", env.args(max_offsets=100, extra=("--mode", "triggered")))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=python_env())
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    batches = [json.loads(line) for line in res.stdout.splitlines() if line.startswith('{"batch"')]
    assert sum(b["read"] for b in batches) == 300 and len(batches) >= 3, batches
    assert all(b["read"] <= 100 for b in batches), batches
    assert len(list(env.table("social_comments").scan())) == 300


def ended(proc) -> str:
    """How a driver ended: the end of its log (its FATAL line, if any, is on stdout, not read here)."""
    return f"exit {proc.returncode}:\n{proc.stderr.read()[-3000:]}"


def test_real_time_mode_writes_each_position_as_it_arrives_and_dead_letters_bad_ones(env):
    """Spark's real-time mode, the third lane: the geo kind's stateless rule (latest position per
    device) and the contract's dead letters, through the JVM foreach sink; the social kind, which
    has no real-time rule, is not read. Prints the latency from a position's send to its row
    being readable in HBase."""
    from tormenta import failures

    track = geo_events(devices=5, steps=6, seed=8)
    newest = {}
    for e in track:
        newest[e["device_id"]] = e
    refused = subprocess.run(spark_submit_command("streaming", [*env.args(extra=("--mode", "real-time")), "--run-seconds", "60"],
                                                  master="local[2]"), capture_output=True, text=True, timeout=300,
                             env=python_env())  # two slots for four partitions  # fmt: skip
    fatal = failures.fatal_line((refused.stdout + refused.stderr).splitlines())
    assert refused.returncode == failures.EXIT_FATAL and "reads 4 Kafka partitions" in fatal, fatal
    assert "this driver has 2 task slot(s)" in fatal
    proc = env.start(master="local[4]", extra=("--mode", "real-time"))
    try:
        env.send_geo(track)
        stale = dict(track[0], event_id=track[0]["event_id"] + "-late")  # older than the device's newest
        env.send_geo([stale])
        env.send_raw(env.geo_topic, b"{not json")
        too_fast = dict(track[1], event_id="too-fast", speed_kmh=300.0, event_time=int(time.time() * 1000))
        env.send_geo([too_fast])
        env.send_social(social_events(5))
        latest = env.table("geo_latest")
        deadline = time.monotonic() + 240
        want = {d: e["event_id"] for d, e in newest.items()}
        while (got := {k.decode(): c.get(b"d:event_id", b"").decode() for k, c in latest.scan()}) != want:
            assert proc.poll() is None, ended(proc)
            assert time.monotonic() < deadline, (got, want)
            time.sleep(0.2)
        row = latest.row(track[-1]["device_id"].encode())
        assert row[b"d:batch"] == b"realtime-v1" and row[b"d:zone"] != b""  # the zone from the reference rows

        waits = []  # one position at a time: send, then read until its row shows it
        for i in range(20):
            e = dict(track[-1], event_id=f"probe-{i}", event_time=int(time.time() * 1000))
            sent = time.monotonic()
            env.send_geo([e])
            while latest.row(e["device_id"].encode(), columns=[b"d:event_id"]).get(b"d:event_id") != e["event_id"].encode():
                assert time.monotonic() - sent < 30, f"probe {i} not stored after 30 s"
                time.sleep(0.005)
            waits.append((time.monotonic() - sent) * 1000)
        waits.sort()
        print(f"real-time lane: send -> readable in HBase, 20 positions: p50 {waits[10]:.0f} ms, max {waits[-1]:.0f} ms")

        dead = {c[b"d:reason"].decode() for _, c in env.table("dead_letters").scan()}
        assert dead == {"invalid_json", "expectation:speed under 250 km/h"}
        assert list(env.table("social_comments").scan()) == []  # no real-time rule: not read

        while not [m for m in env.metrics() if m.get("mode") == "real-time"]:  # one per checkpoint (30 s)
            assert proc.poll() is None, ended(proc)
            assert time.monotonic() < deadline, "no real-time batch stored its result"
            time.sleep(1)
        assert env.metrics()[0]["read"] >= len(track) + 3
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        rc = proc.wait(120)
    assert rc == failures.EXIT_STOPPED, ended(proc)

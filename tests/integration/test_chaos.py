"""Contract 8: a chaos run. Random ``kill -9`` of producers, the Spark driver, the Kafka broker
and HBase (with its Thrift server) while the pipeline runs; afterwards no event is missing and
none is counted twice.

Each event names its predecessor: comment ``n`` of a page (event id ``<page>-c<n>``) follows
comment ``n - 1`` of the same page. The hot page is pulled by two ingestors (even and odd
``n``), so its chain crosses producers. After the run every reference must resolve (no holes),
every acknowledged event must be stored once, and the per-minute counts must equal the stored
rows (no event counted twice).

What restarts the killed parts here is what restarts them in production: the ingestors and the
driver as Airflow's task retries would (same command, same saved feed position, same checkpoint),
the services as their supervisor would (``tormenta stack up``). The run's figures (kills by
kind, produced, acknowledged, stored, holes, duplicates) go to ``artifacts/chaos.json``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict

import psutil
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.test_streaming import Env, stored_minutes
from tormenta.spark_conf import spark_submit_command
from tormenta.stack.services import python_env

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("TORMENTA_CHAOS_SEED", "8"))
CHAOS_SECONDS = 150
KINDS = ("producer", "driver", "broker", "hbase")
# (name, pages, shard, shards, events/s, events): pol-01 is the hot page, two ingestors
INGESTORS = [
    ("hot-0", "pol-01", 0, 2, 60, 12_000),
    ("hot-1", "pol-01", 1, 2, 60, 12_000),
    ("cold", "pol-02,pol-03", 0, 1, 40, 16_000),
]


class Chaos:
    def __init__(self, env: Env, tmp_path, rng: random.Random) -> None:
        self.env, self.tmp, self.rng = env, tmp_path, rng
        self.procs: dict[str, subprocess.Popen] = {}
        self.done: set[str] = set()
        self.kills: Counter = Counter()
        self.restarts: Counter = Counter()
        self.log = (tmp_path / "chaos.log").open("a")

    # --- the parts Airflow would run ---------------------------------------------------------
    def start_ingestor(self, name: str) -> None:
        _, pages, shard, shards, rate, limit = next(i for i in INGESTORS if i[0] == name)
        cmd = [sys.executable, "-m", "ingestors.runner", "social", "--bootstrap", self.env.stack.kafka_bootstrap,
               "--pages", pages, "--shard", str(shard), "--shards", str(shards), "--rate", str(rate),
               "--max-events", str(limit), "--topic", self.env.social_topic, "--name", f"chaos-{name}",
               "--state-file", str(self.tmp / f"{name}.position"), "--report-every", "5"]  # fmt: skip
        self.procs[name] = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=python_env(),
                                            start_new_session=True)  # fmt: skip

    def start_driver(self) -> None:
        cmd = spark_submit_command("streaming", [*self.env.args(max_offsets=5000), "--run-seconds", "3600"])
        self.procs["driver"] = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=python_env(),
                                                start_new_session=True)  # fmt: skip

    def restart_what_ended(self) -> None:
        """Airflow's retry: a part that exited with a failure is started again; a feed that
        reached its end (exit 0) is done."""
        for name, proc in list(self.procs.items()):
            rc = proc.poll()
            if rc is None or name in self.done:
                continue
            if rc == 0 and name != "driver":
                self.done.add(name)
                continue
            self.note(f"{name} exited {rc}: restarting it")
            self.restarts[name] += 1
            if name == "driver":
                self.start_driver()
            else:
                self.start_ingestor(name)

    # --- the faults ----------------------------------------------------------------------------
    def kill(self, kind: str) -> None:
        from tormenta import stack as stack_mod

        if kind == "producer":
            alive = [n for n, p in self.procs.items() if n != "driver" and p.poll() is None]
            if not alive:
                return
            victim = self.rng.choice(alive)
            os.killpg(self.procs[victim].pid, signal.SIGKILL)
            self.procs[victim].wait(10)
        elif kind == "driver":
            if self.procs["driver"].poll() is not None:
                return
            os.killpg(self.procs["driver"].pid, signal.SIGKILL)  # the JVM and its Python driver
            self.procs["driver"].wait(10)
        else:
            names = ["kafka"] if kind == "broker" else ["hbase", "hbase-thrift"]
            pm = stack_mod.manager()
            victims = [p for p in (pm.running(n) for n in names) if p is not None]
            for p in victims:
                os.killpg(os.getpgid(p.pid), signal.SIGKILL)
            psutil.wait_procs(victims, timeout=30)
            self.sleep(self.rng.uniform(2, 6))  # down for a while: the others meet it dead
            self.note(f"restarting {names}")
            stack_mod.up()
        self.kills[kind] += 1
        self.note(f"killed {kind}")

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.restart_what_ended()
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))

    def note(self, text: str) -> None:
        self.log.write(f"==== chaos {time.strftime('%H:%M:%S')} {text}\n")
        self.log.flush()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


def kafka_records(env: Env) -> int:
    probe = Consumer({"bootstrap.servers": env.stack.kafka_bootstrap, "group.id": "chaos-probe"})
    try:
        meta = probe.list_topics(env.social_topic, timeout=30).topics[env.social_topic]
        return sum(probe.get_watermark_offsets(TopicPartition(env.social_topic, p), timeout=30)[1]
                   for p in meta.partitions)  # fmt: skip
    finally:
        probe.close()


def holes(event_ids) -> list[tuple[str, int]]:
    """(page, n) of every stored comment whose predecessor, comment n - 1 of its page, is missing."""
    by_page: dict[str, set[int]] = defaultdict(set)
    for event_id in event_ids:
        page, n = event_id.rsplit("-c", 1)
        by_page[page].add(int(n))
    return sorted((page, n) for page, ns in by_page.items() for n in ns if n > 0 and n - 1 not in ns)


@pytest.mark.contract(8)
def test_chaos_run_leaves_no_hole_and_no_double(stack, hbase, unique, tmp_path):
    from tests.e2e.browser import artifacts_dir
    from tormenta import stack as stack_mod
    from tormenta.hbase import HBaseEndpoint

    env = Env(stack, hbase, unique, tmp_path)
    rng = random.Random(SEED)
    chaos = Chaos(env, tmp_path, rng)
    plan = [*KINDS, *KINDS, *(rng.choice(KINDS) for _ in range(2))]  # every kind at least twice
    rng.shuffle(plan)
    try:
        for name, *_ in INGESTORS:
            chaos.start_ingestor(name)
        chaos.start_driver()
        deadline = time.monotonic() + 300
        while not list(env.table("microbatch_metrics").scan(limit=1)):  # the pipeline is flowing
            assert time.monotonic() < deadline, "no first batch"
            chaos.sleep(1)
        gap = CHAOS_SECONDS / len(plan)
        for kind in plan:
            chaos.sleep(rng.uniform(0.5 * gap, 1.5 * gap))
            chaos.kill(kind)
        stack_mod.up()  # every service back
        env.hbase = HBaseEndpoint(stack.bind_host, stack.thrift_port).connect()
        deadline = time.monotonic() + 900
        while len(chaos.done) < len(INGESTORS):  # every feed runs to its end
            assert time.monotonic() < deadline, f"feeds not finished: {set(chaos.procs) - chaos.done - {'driver'}}"
            chaos.sleep(2)
    finally:
        chaos.stop_all()
        stack_mod.up()
    env.hbase = HBaseEndpoint(stack.bind_host, stack.thrift_port).connect()
    env.run(max_offsets=20_000)  # the driver's last restart drains what is left
    try:
        stored = {k.split(b"|", 1)[1].decode() for k, _ in env.table("social_comments").scan(columns=[b"d:page_id"])}
        acked = {f"{pages_owner}-c{n:012d}" for pages_owner, n in _acknowledged(tmp_path)}
        counted = sum(v[0] for v in stored_minutes(env).values())
        duplicates_recognised = sum(1 for _, c in env.table("dead_letters").scan() if c[b"d:reason"] == b"duplicate_event_id")
        other_dead = sum(1 for _, c in env.table("dead_letters").scan() if c[b"d:reason"] != b"duplicate_event_id")
        produced = kafka_records(env)
    finally:
        env.close()
    missing_predecessors = holes(stored)
    figures = {
        "seed": SEED, "kills": dict(chaos.kills), "restarts": dict(chaos.restarts), "produced_to_kafka": produced,
        "acknowledged": len(acked), "stored": len(stored), "counted_in_aggregates": counted,
        "holes": len(missing_predecessors), "missing_acknowledged": len(acked - stored), "stored_not_acknowledged": len(stored - acked),
        "sent_twice_and_recognised": duplicates_recognised, "counted_twice": counted - len(stored),
    }  # fmt: skip
    (artifacts_dir().parent / "chaos.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    assert set(chaos.kills) == set(KINDS), figures  # every kind of part really was killed
    assert acked and acked <= stored, figures  # every acknowledged event is stored
    assert stored == acked, figures  # every feed ran to its end, so all it sent was acknowledged
    assert missing_predecessors == [], missing_predecessors[:10]
    assert counted == len(stored), figures  # none counted twice
    assert other_dead == 0, figures
    assert produced == len(stored) + duplicates_recognised, figures  # good + dead == produced


def _acknowledged(tmp_path):
    """(page, n) of every event the feeds report acknowledged: each feed ran to its end (its
    position file says where that is), and a position is saved only once Kafka acknowledged
    everything before it."""
    for name, pages, shard, shards, _, _ in INGESTORS:
        position = json.loads((tmp_path / f"{name}.position").read_text())
        for page in pages.split(","):
            yield from ((page, n) for n in range(shard, position["next_n"][page], shards))

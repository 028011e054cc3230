"""The e2e story: both pipelines driven through the running Airflow REST API, as a user would.

One story, in a namespace of its own (topics, HBase tables, checkpoint):

1. trigger the micro-batch DAG (2 s interval, social pages, a hot page with two ingestors,
   finite feeds) -> events reach HBase, the run stays running;
2. ``kill -9`` one ingestor and the Spark driver's process group -> Airflow retries bring both
   back; pulling ingestors resume from their saved position, the query from its checkpoint;
3. trigger again with a 1 s interval -> the running run hands over (stops in order) and the new
   run restarts the query on the same checkpoint;
4. the stop DAG stops it: ingestors first, then the drained query; no process left;
5. the batch DAG on a window covering all of it -> its aggregates equal the micro-batch ones;
   re-running the window leaves HBase identical.

Tasks run far longer than the execution-API token lifetime of the test stack (60 s), which
proves long tasks are not killed by token expiry.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import signal
import time
import uuid

import psutil
import pytest

from tormenta.airflow_api import local_client

MB, STOP, BATCH = "tormenta_microbatch", "tormenta_microbatch_stop", "tormenta_batch"
EVENTS_RUN1 = 1500  # per ingestor, first run
EVENTS_PER_INGESTOR = 1600  # per ingestor, after the second run resumed the feeds
INGESTORS = 3  # pol-03 twice (hot page), the nine other pages once


def wait_until(what: str, probe, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)


def tis(admin, dag_id, run_id) -> list[dict]:
    return admin.task_instances(dag_id, run_id)


def ti(admin, dag_id, run_id, task_id, map_index=-1) -> dict:
    return next(t for t in tis(admin, dag_id, run_id) if t["task_id"] == task_id and t["map_index"] == map_index)


def every_command_line() -> list[str]:
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        out.append(" ".join(proc.info["cmdline"] or []))
    return out


def processes_of(ns: str) -> list[psutil.Process]:
    """Every process (ingestor, phones, spark-submit, Python driver) working for namespace ``ns``."""
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if f"{ns}.social.comments" in cmd or f"{ns}_microbatch" in cmd or f"{ns}.geo.positions" in cmd:
            out.append(p)
    return out


def count_rows(hbase, table: str) -> int:
    return sum(1 for _ in hbase.table(table).scan(columns=[b"d:batch"]))


class Fresh:
    """A new Thrift connection per use: the Thrift server drops connections idle for 60 s."""

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def conn(self):
        return self.endpoint.connect()

    def count(self, table: str) -> int:
        with self.endpoint.session() as conn:
            return count_rows(conn, table) if table.encode() in conn.tables() else 0

    def dead_letter_reasons(self, ns: str) -> dict[str, int]:
        with self.endpoint.session() as conn:
            return dead_letter_reasons(conn, ns)

    def scan(self, table: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
        with self.endpoint.session() as conn:
            return list(conn.table(table).scan()) if table.encode() in conn.tables() else []

    def snapshot(self, ns: str, tables: list[str]) -> dict:
        with self.endpoint.session() as conn:
            return {t: list(conn.table(f"{ns}_{t}").scan(include_timestamp=True)) for t in tables}


def own_namespace(stack, request, prefix: str) -> tuple[str, Fresh]:
    """A namespace for one test (topics, tables, checkpoint), its HBase tables dropped at the end."""
    from tormenta.hbase import HBaseEndpoint
    from tormenta.schema import drop_namespace

    ns = prefix + uuid.uuid4().hex[:8]

    def drop():
        with HBaseEndpoint(stack.bind_host, stack.thrift_port, timeout_ms=120_000).session() as conn:
            drop_namespace(conn, ns)

    request.addfinalizer(drop)
    return ns, Fresh(HBaseEndpoint(stack.bind_host, stack.thrift_port))


def one_ingestor_conf(ns: str, max_events: int) -> dict:
    """Micro-batch Params of a small social run: one ingestor for the ten pages, 10 comments/s each."""
    return {"namespace": ns, "interval": "PT1S", "sources": ["social"], "hot_pages": [], "ingestors_other_pages": 1,
            "rate_per_page": 10, "max_events_per_ingestor": max_events}  # fmt: skip


def dead_letter_reasons(hbase, ns: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, cells in hbase.table(f"{ns}_dead_letters").scan(columns=[b"d:reason"]):
        out[cells[b"d:reason"].decode()] = out.get(cells[b"d:reason"].decode(), 0) + 1
    return out


@pytest.fixture(scope="session")
def admin(stack):
    client = local_client("admin")
    for dag_id in (MB, STOP, BATCH):
        client.wait_for_dag(dag_id)
        client.set_paused(dag_id, False)
    return client


@pytest.fixture(scope="session")
def token_lifetime(stack) -> int:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(stack.airflow_home / "airflow.cfg")
    return cfg.getint("execution_api", "jwt_expiration_time")


@pytest.fixture(scope="session")
def story(admin, stack, token_lifetime, request):
    """Runs steps 1-4 and records what happened; the tests below check the record."""
    from tormenta.hbase import HBaseEndpoint

    ns = "e2e" + uuid.uuid4().hex[:8]
    hbase = Fresh(HBaseEndpoint(stack.bind_host, stack.thrift_port))
    rec: dict = {"ns": ns, "started": time.time()}

    def drop_tables():  # the story's two namespaces, at the end of the session
        from tormenta.schema import drop_namespace

        with HBaseEndpoint(stack.bind_host, stack.thrift_port, timeout_ms=120_000).session() as conn:
            for namespace in (ns, ns + "b"):
                drop_namespace(conn, namespace)

    request.addfinalizer(drop_tables)
    conf = {"namespace": ns, "interval": "PT2S", "sources": ["social"], "hot_pages": ["pol-03"],
            "ingestors_per_hot_page": 2, "ingestors_other_pages": 1, "rate_per_page": 20,
            "max_events_per_ingestor": EVENTS_RUN1}  # fmt: skip
    run1 = admin.trigger(MB, conf=conf)["dag_run_id"]
    rec["run1"] = run1
    t0 = time.monotonic()

    # 1. events reach HBase; the run keeps running
    table = f"{ns}_social_comments"
    wait_until("first events in HBase", lambda: hbase.count(table) > 0, timeout=360)
    rec["first_rows_after_s"] = time.monotonic() - t0
    rec["run1_state_with_rows"] = admin.dag_run(MB, run1)["state"]
    # the ingest tasks' labels while they run (the UI showed map indexes 0-2 until they ended)
    rec["ingest_labels_while_running"] = sorted(
        (t["map_index"], t.get("rendered_map_index")) for t in tis(admin, MB, run1)
        if t["task_id"] == "ingest" and t["state"] == "running")  # fmt: skip
    rec["cmdlines"] = every_command_line()  # the machine's process list while the pipeline runs

    # 2. kill -9 the hot page's second ingestor and the Spark driver (whole process group)
    victim = wait_until("hot-page ingestor process", lambda: next(
        (p for p in processes_of(ns) if "--shard 1 --shards 2" in " ".join(p.cmdline())), None), timeout=120)  # fmt: skip
    os.kill(victim.pid, signal.SIGKILL)
    spark = wait_until("spark driver", lambda: next(
        (p for p in processes_of(ns) if "SparkSubmit" in " ".join(p.cmdline())), None), timeout=60)  # fmt: skip
    os.killpg(os.getpgid(spark.pid), signal.SIGKILL)
    rec["killed"] = {"ingestor": victim.pid, "spark_group": spark.pid}
    t_kill = time.monotonic()

    def restarted():
        mapped = [t for t in tis(admin, MB, run1) if t["task_id"] == "ingest"]
        stream = ti(admin, MB, run1, "stream")
        retried = [t for t in mapped if t["try_number"] >= 2]
        return stream["try_number"] >= 2 and stream["state"] == "running" and retried and (stream, retried)

    stream_ti, retried = wait_until("stream and ingestor retried", restarted, timeout=300)
    rec["retried_ingestors"] = [t["map_index"] for t in retried]
    rec["restarted_after_kill_s"] = round(time.monotonic() - t_kill, 1)
    rec["run1_state_after_kill"] = admin.dag_run(MB, run1)["state"]
    rec["ui_running_run"] = look_at_running_run(stack, run1)

    # every finite feed ends: its ingestor task succeeds
    wait_until("ingestors finished", lambda: all(
        t["state"] == "success" for t in tis(admin, MB, run1) if t["task_id"] == "ingest"), timeout=600)  # fmt: skip
    wait_until("run 1 events stored", lambda: hbase.count(table) >= INGESTORS * EVENTS_RUN1, timeout=300)
    # a trigger that cannot run (a misspelled key) must not take the running pipeline down
    bad = admin.trigger(MB, conf={**conf, "intervall": "PT1S"})["dag_run_id"]
    rec["bad_run"] = bad

    def supervise_log() -> str:
        t = ti(admin, MB, run1, "supervise")
        return admin.task_log(MB, run1, "supervise", t["try_number"])

    wait_until("the supervisor refused to hand over to the bad run",
               lambda: f"NOT handing over to queued run {bad}" in supervise_log(), timeout=180)  # fmt: skip
    rec["run1_state_with_bad_queued"] = admin.dag_run(MB, run1)["state"]
    rec["bad_state_while_run1_runs"] = admin.dag_run(MB, bad)["state"]

    # keep the run alive for several token lifetimes before stopping it
    long_enough = t0 + 2.5 * token_lifetime + 30
    time.sleep(max(0.0, long_enough - time.monotonic()))

    # 3. trigger again with another interval (and 100 more events per feed, which resume where
    # they stopped): run 1 hands over to run 2, whose query continues on the same checkpoint
    run2 = admin.trigger(MB, conf={**conf, "interval": "PT1S", "max_events_per_ingestor": EVENTS_PER_INGESTOR})[
        "dag_run_id"
    ]
    rec["run2"] = run2
    t_handover = time.monotonic()
    rec["run1_final"] = admin.wait_for_run(MB, run1, timeout=600)["state"]
    rec["handover_s"] = round(time.monotonic() - t_handover, 1)
    rec["bad_final"] = admin.wait_for_run(MB, bad, timeout=300)["state"]  # its turn came before run 2's
    rec["run1_tis"] = tis(admin, MB, run1)
    from tormenta.control import ControlPlane

    control = ControlPlane(HBaseEndpoint(stack.bind_host, stack.thrift_port), ns)
    rec["control_run1"] = control.state(run1)
    wait_until("run 2 events stored", lambda: hbase.count(table) >= INGESTORS * EVENTS_PER_INGESTOR,
               timeout=600)  # fmt: skip

    # 4. stop through the stop DAG
    stop = admin.trigger(STOP, conf={"namespace": ns})["dag_run_id"]
    t_stop = time.monotonic()
    rec["stop_final"] = admin.wait_for_run(STOP, stop, timeout=600)["state"]
    rec["stop_s"] = round(time.monotonic() - t_stop, 1)
    rec["run2_final"] = admin.wait_for_run(MB, run2, timeout=300)["state"]
    rec["control_run2"] = control.state(run2)
    time.sleep(3)
    rec["left_running"] = [" ".join(p.cmdline())[:200] for p in processes_of(ns) if p.is_running()]
    rec["stopped"] = time.time()
    rec["rows"] = hbase.count(table)
    rec["dead"] = hbase.dead_letter_reasons(ns)
    rec["first_rows_after_s"] = round(rec["first_rows_after_s"], 1)
    from tests.e2e.browser import artifacts_dir

    timings = {k: rec[k] for k in ("first_rows_after_s", "restarted_after_kill_s", "handover_s", "stop_s")}
    (artifacts_dir().parent / "e2e-story.json").write_text(json.dumps({**timings, "ns": ns, "rows": rec["rows"],
                                                                       "dead": rec["dead"]}, indent=2))  # fmt: skip
    return rec


def look_at_running_run(stack, run_id: str) -> dict:
    """What a user sees of the running run (after the kills): a screenshot and the page text."""
    import urllib.parse

    from tests.e2e.browser import logged_in, shoot
    from tormenta.stack.airflow_setup import passwords_file

    password = json.loads(passwords_file(stack).read_text())["admin"]
    with logged_in(stack.airflow_url, "admin", password) as page:
        page.goto(f"{stack.airflow_url}/dags/{MB}/runs/{urllib.parse.quote(run_id)}")
        page.get_by_text("SparkJobOperator").first.wait_for(timeout=30_000)
        path = shoot(page, "microbatch-running-run")
        return {"screenshot": str(path), "text": page.inner_text("body")}


@pytest.fixture(scope="session")
def batch_window(story, admin):
    start = dt.datetime.fromtimestamp(story["started"], tz=dt.UTC).replace(second=0, microsecond=0)
    end = dt.datetime.fromtimestamp(story["stopped"], tz=dt.UTC).replace(second=0, microsecond=0)
    end += dt.timedelta(minutes=2)
    start -= dt.timedelta(minutes=1)
    conf = {"window_start": start.strftime("%Y-%m-%dT%H:%MZ"), "window_end": end.strftime("%Y-%m-%dT%H:%MZ"),
            "source_namespace": story["ns"], "namespace": story["ns"] + "b", "parts": 3}  # fmt: skip
    run = admin.trigger(BATCH, conf=conf)["dag_run_id"]
    final = admin.wait_for_run(BATCH, run, timeout=900)
    return {"conf": conf, "run": run, "final": final, "start": start, "end": end}



"""Local stack manager: ``up`` / ``down`` / ``status`` / ``logs`` for Kafka, HBase, Thrift, Airflow.

``up`` is idempotent: it starts what is not running, then waits until each service truly
answers (Kafka metadata, an HBase table listing over Thrift, Airflow's health endpoint),
printing progress while it waits. ``down`` stops only processes that ``up`` started, in reverse
order, and keeps all data.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from tormenta import jvm
from tormenta.settings import REPO_ROOT, Settings, load
from tormenta.stack import airflow_setup
from tormenta.stack.process import ProcessManager
from tormenta.stack.services import HBaseService, JvmService, KafkaService, ThriftService, port_open

JVM_SERVICES: list[JvmService] = [KafkaService(), HBaseService(), ThriftService()]
# The triggerer runs deferred tasks and asset watchers; without it the UI shows a red "Triggerer" badge.
AIRFLOW_PROCESSES = ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
ALL_PROCESSES = [svc.name for svc in JVM_SERVICES] + AIRFLOW_PROCESSES


class StackError(RuntimeError):
    pass


def say(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


def manager(s: Settings | None = None) -> ProcessManager:
    s = s or load()
    return ProcessManager(s.run_dir, s.logs_dir)


def service_pids(names: tuple[str, ...] = ("hbase", "hbase-thrift")) -> dict[str, int]:
    """PIDs of the local stack's running services among ``names`` (empty on a cluster, where
    nothing here started them): what ``tormenta.resources`` meters beside a job."""
    try:
        pm = manager()
        return {name: proc.pid for name in names if (proc := pm.running(name))}
    except Exception:  # noqa: BLE001 - no local stack here: no service figures
        return {}


def _wait(name: str, probe: Callable[[], bool], pm: ProcessManager, timeout: float) -> None:
    start = time.monotonic()
    last_note = start
    while not probe():
        if pm.exited_early(name):
            tail = "\n".join(pm.log_file(name).read_text(errors="replace").splitlines()[-30:])
            raise StackError(f"{name} exited during start-up; log {pm.log_file(name)}:\n{tail}")
        now = time.monotonic()
        if now - start > timeout:
            raise StackError(f"{name} not ready after {timeout:.0f}s; see {pm.log_file(name)}")
        if now - last_note >= 10:
            say(f"  waiting for {name} ... {now - start:.0f}s")
            last_note = now
        time.sleep(1)
    say(f"  {name} ready ({time.monotonic() - start:.1f}s)")


def _check_ports_free(name: str, ports: list[int], s: Settings) -> None:
    busy = [p for p in ports if port_open(s.bind_host, p, timeout=0.3)]
    if busy:
        raise StackError(
            f"cannot start {name}: port(s) {busy} on {s.bind_host} are taken by a process this stack "
            "did not start. Stop it or choose other ports (TORMENTA_*_PORT, see .env.example)."
        )


LOOPBACK = ("127.0.0.1", "localhost", "::1")
UNAUTHENTICATED = "Kafka (PLAINTEXT), ZooKeeper and the HBase Thrift server"


def check_bind(s: Settings) -> None:
    """Refuse a bind beyond loopback: the local stack's Kafka, ZooKeeper and Thrift server have
    no authentication, so anyone who reaches the port could read and write every event."""
    if s.bind_host not in LOOPBACK:
        raise StackError(
            f"TORMENTA_BIND_HOST={s.bind_host} would expose {UNAUTHENTICATED}, which have no "
            "authentication here. The local stack binds to loopback only; reach it from elsewhere "
            "through an SSH tunnel."
        )


def users_created_message(s: Settings, users: list[str]) -> list[str]:
    """What ``up`` says when it created the Airflow users: where the passwords are, never the
    passwords themselves (``up`` also runs in CI and in test fixtures, whose output is kept)."""
    return [f"Airflow users created: {', '.join(users)}. Their passwords are in {airflow_setup.passwords_file(s)} "
            "(mode 0600)."]  # fmt: skip


def up(timeout: float = 300.0) -> dict[str, bool]:
    """Bring the whole stack up; returns {process: started_now}."""
    s = load()
    check_bind(s)
    jvm.check_java()
    for name in jvm.COMPONENTS:
        jvm.ensure_jars(name)
    for folder in (s.data_dir, s.logs_dir, s.run_dir, s.conf_dir):
        folder.mkdir(parents=True, exist_ok=True)
    from tormenta import devices
    from tormenta.housekeeping import Limits, rotate_logs

    airflow_setup._secret(s, devices.KEY_FILE, devices.new_key)  # the geo endpoint's device tokens

    limits = Limits.from_env()
    for name in rotate_logs(s.logs_dir, limits.log_max_mb, limits.log_keep):
        say(f"rotated {name} (over {limits.log_max_mb:g} MB; the hourly tormenta_housekeeping DAG does it too)")
    pm = manager(s)
    started: dict[str, bool] = {}

    for svc in JVM_SERVICES:
        if pm.running(svc.name):
            say(f"{svc.name}: already running (pid {pm.running(svc.name).pid})")
            started[svc.name] = False
        else:
            _check_ports_free(svc.name, svc.ports(s), s)
            svc.prepare(s)
            pid = pm.start(svc.name, svc.command(s), svc.env(s))
            say(f"{svc.name}: started pid {pid} ({svc.description})")
            started[svc.name] = True
        _wait(svc.name, lambda svc=svc: svc.ready(s), pm, timeout)

    from tormenta import batch
    from tormenta.kafka import ensure_topics

    if ensure_topics(s.kafka_bootstrap, [batch.files_topic()]):
        say(f"kafka: created topic {batch.FILES_TOPIC} (the batch DAG's file announcements)")
    airflow_setup.render_config(s)
    passwords, created = airflow_setup.ensure_passwords(s)
    if not all(pm.running(n) for n in AIRFLOW_PROCESSES):
        say("airflow: migrating metadata DB and creating connections (first time takes ~1 min) ...")
        airflow_setup.init_metadata(s)
    commands = airflow_setup.process_commands(s)
    for name in AIRFLOW_PROCESSES:
        if pm.running(name):
            started[name] = False
            continue
        if name == "airflow-api-server":
            _check_ports_free(name, [s.airflow_port], s)
        pid = pm.start(name, commands[name], airflow_setup.airflow_env(s), cwd=s.airflow_home)
        say(f"{name}: started pid {pid}")
        started[name] = True
    _wait("airflow-api-server", lambda: airflow_setup.healthy(s), pm, timeout)

    if created:
        for line in users_created_message(s, sorted(passwords)):
            say(line)
    return started


def stop_pipelines(timeout: float = 180.0) -> None:
    """Stop a running micro-batch pipeline in order (ingestors, drained stream) before Airflow goes.

    Its processes run in their own process groups (so a kill reaches a whole spark-submit), which
    also means stopping the scheduler alone would not stop them.
    """
    from tormenta.contracts import NAMESPACE_PATTERN
    from tormenta.control import ControlPlane
    from tormenta.hbase import HBaseEndpoint

    s = load()
    endpoint = HBaseEndpoint(s.bind_host, s.thrift_port, timeout_ms=10_000)
    try:
        with endpoint.session() as conn:
            namespaces = [t.decode()[: -len("_control")] for t in conn.tables() if t.endswith(b"_control")]
    except Exception:  # noqa: BLE001 - HBase already down: nothing to ask
        return
    for ns in namespaces:
        if not re.fullmatch(NAMESPACE_PATTERN, ns):  # another application's table
            continue
        control = ControlPlane(endpoint, ns)
        run_id = control.stop_active("tormenta stack down")
        if run_id is None:
            continue
        say(f"micro-batch pipeline {ns!r} ({run_id}) is running: stopping it in order first ...")
        say(f"  pipeline {ns!r}: {control.wait_stopped(run_id, timeout=timeout, poll_s=2)['phase']}")


def leftover_job_processes() -> list[psutil.Process]:
    """Ingestor / Spark job processes started from this checkout that are still alive."""
    marks = (str(REPO_ROOT / "spark_jobs") + "/", "ingestors.runner", "ingestors.fleet")
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if any(m in cmd for m in marks) and (str(REPO_ROOT) in cmd or p.info["cwd"] == str(REPO_ROOT)):
            out.append(p)
    return out


def down(names: list[str] | None = None) -> list[str]:
    """Stop the processes this stack started (all by default), in reverse start order; keep data.

    With Airflow going down, a running micro-batch pipeline is stopped in order first, and any
    job process left over afterwards is terminated (no orphans).
    """
    pm = manager()
    if not names or set(AIRFLOW_PROCESSES) & set(names):
        if pm.running("airflow-scheduler"):
            stop_pipelines()
    stopped = []
    for name in reversed(ALL_PROCESSES):
        if names and name not in names:
            continue
        if pm.stop(name, timeout=90 if name == "hbase" else 60):
            say(f"{name}: stopped")
            stopped.append(name)
        if name == "airflow-api-server":  # the last Airflow process: sweep what tasks left
            for proc in leftover_job_processes():
                say(f"terminating leftover job process {proc.pid}: {' '.join(proc.cmdline())[:120]}")
                proc.terminate()
            psutil.wait_procs(leftover_job_processes(), timeout=20)
            for proc in leftover_job_processes():
                proc.kill()
    return stopped


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    endpoint: str
    healthy: bool
    pss_mb: float | None


def status() -> list[ServiceStatus]:
    s = load()
    pm = manager(s)
    endpoints = {
        "kafka": (s.kafka_bootstrap, lambda: JVM_SERVICES[0].ready(s)),
        "hbase": (f"{s.bind_host}:{s.hbase_master_port} (zk :{s.zookeeper_port})",
                  lambda: JVM_SERVICES[1].ready(s)),
        "hbase-thrift": (f"{s.bind_host}:{s.thrift_port}", lambda: JVM_SERVICES[2].ready(s)),
        "airflow-api-server": (s.airflow_url, lambda: airflow_setup.health(s) is not None),
        "airflow-scheduler": ("-", lambda: _airflow_part(s, "scheduler")),
        "airflow-dag-processor": ("-", lambda: _airflow_part(s, "dag_processor")),
        "airflow-triggerer": ("-", lambda: _airflow_part(s, "triggerer")),
    }
    rows = []
    for name in ALL_PROCESSES:
        proc = pm.running(name)
        endpoint, probe = endpoints[name]
        rss = None
        if proc:
            try:
                members = [proc, *proc.children(recursive=True)]
                # PSS: shared pages split between processes, so forked workers are not counted N times.
                rss = sum(p.memory_full_info().pss for p in members) / 2**20
            except Exception:  # noqa: BLE001 - process ended while we looked
                rss = None
        rows.append(ServiceStatus(name, proc.pid if proc else None, endpoint, probe(), rss))
    return rows


def _airflow_part(s: Settings, part: str) -> bool:
    doc = airflow_setup.health(s)
    return bool(doc) and (doc.get(part) or {}).get("status") == "healthy"


def is_up() -> bool:
    return all(row.healthy for row in status())

"""CPU-seconds and peak memory of the processes behind a task, stored per Airflow run.

A :class:`ResourceMeter` samples a set of processes every few seconds while a task runs:

* ``group``: the process group of what the task started (an ingestor, a spark-submit with its
  JVM, Python driver and Python workers): CPU-seconds used and peak resident memory;
* ``services``: long-running processes shared by everyone (the HBase region server and the
  Thrift server, i.e. the cost of the HBase writes): CPU-seconds used *during* the task.

Rows: ``<namespace>_run_resources``, key ``<dag_id>|<run_id>|<component>|<try>``, ``d:doc`` JSON.
Samples miss what a process used after the last sample before it exited; with a 2 s period that
is a small under-count, said here rather than hidden.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from tormenta.contracts import table_name

SAMPLE_SECONDS = 2.0


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)


def group_processes(pgid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid:
                out.append(p)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return out


@dataclass
class Usage:
    component: str
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    started_at: int = 0
    ended_at: int = 0
    samples: int = 0
    services_cpu_seconds: dict[str, float] = field(default_factory=dict)
    services_peak_rss_mb: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ResourceMeter:
    """Background sampler; ``start()`` when the processes exist, ``stop()`` returns the usage."""

    def __init__(self, component: str, pgid: int | None = None, services: dict[str, int] | None = None,
                 every: float = SAMPLE_SECONDS) -> None:  # fmt: skip
        self.usage = Usage(component=component)
        self.pgid = pgid
        self.services = {name: pid for name, pid in (services or {}).items() if pid}
        self.every = every
        self._cpu_seen: dict[tuple[int, float], float] = {}  # (pid, create_time) -> max cumulative CPU
        self._svc_start: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"meter-{component}")

    def start(self) -> ResourceMeter:
        self.usage.started_at = int(time.time() * 1000)
        for name, pid in self.services.items():
            try:
                self._svc_start[name] = _cpu(psutil.Process(pid))
            except psutil.Error:
                pass
        self._thread.start()
        return self

    def sample(self) -> None:
        if self.pgid is not None:
            rss = 0
            for p in group_processes(self.pgid):
                try:
                    with p.oneshot():
                        key = (p.pid, p.create_time())
                        self._cpu_seen[key] = max(self._cpu_seen.get(key, 0.0), _cpu(p))
                        rss += p.memory_info().rss
                except psutil.Error:
                    continue
            self.usage.peak_rss_mb = max(self.usage.peak_rss_mb, round(rss / 2**20, 1))
            self.usage.cpu_seconds = round(sum(self._cpu_seen.values()), 2)
        if self.services:
            svc_rss = 0
            for pid in self.services.values():
                try:
                    svc_rss += psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    continue
            self.usage.services_peak_rss_mb = max(self.usage.services_peak_rss_mb, round(svc_rss / 2**20, 1))
        self.usage.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self) -> Usage:
        self._stop.set()
        self._thread.join(5)
        self.sample()
        for name, start in self._svc_start.items():
            try:
                self.usage.services_cpu_seconds[name] = round(_cpu(psutil.Process(self.services[name])) - start, 2)
            except psutil.Error:
                pass
        self.usage.ended_at = int(time.time() * 1000)
        return self.usage


def store(endpoint, namespace: str, dag_id: str, run_id: str, try_number: int, usage: Usage) -> None:
    from tormenta.contracts import TABLES
    from tormenta.hbase import ensure_table

    with endpoint.session() as conn:
        table = table_name("run_resources", namespace)
        ensure_table(conn, table, TABLES["run_resources"])
        key = f"{dag_id}|{run_id}|{usage.component}|{try_number:04d}".encode()
        conn.table(table).put(key, {b"d:doc": json.dumps(usage.as_dict(), sort_keys=True).encode()})


def load(conn, namespace: str, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    """component -> summed CPU-seconds, peak memory and HBase-side CPU over every try."""
    table = table_name("run_resources", namespace)
    if table.encode() not in conn.tables():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for _key, cells in conn.table(table).scan(row_prefix=f"{dag_id}|{run_id}|".encode()):
        doc = json.loads(cells[b"d:doc"])
        comp = doc["component"]
        acc = out.setdefault(comp, {"cpu_seconds": 0.0, "peak_rss_mb": 0.0, "tries": 0, "services_cpu_seconds": {},
                                    "services_peak_rss_mb": 0.0})  # fmt: skip
        acc["services_peak_rss_mb"] = max(acc["services_peak_rss_mb"], doc.get("services_peak_rss_mb", 0.0))
        acc["cpu_seconds"] = round(acc["cpu_seconds"] + doc["cpu_seconds"], 2)
        acc["peak_rss_mb"] = max(acc["peak_rss_mb"], doc["peak_rss_mb"])
        acc["tries"] += 1
        for name, cpu in doc.get("services_cpu_seconds", {}).items():
            acc["services_cpu_seconds"][name] = round(acc["services_cpu_seconds"].get(name, 0.0) + cpu, 2)
    return out

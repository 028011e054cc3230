"""Shared pieces of the benchmarks: the stack's endpoints, repeated runs, medians, the JVM tools.

Every figure is measured ``runs`` times (default 3) and reported as median [min, max]; every
ratio is computed inside one run (both sides measured back to back on the same stack) and then
summarised the same way.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESULTS = REPO / "bench" / "results"


@dataclass
class Figure:
    bench: str  # "B1"
    name: str  # what was measured
    unit: str
    values: list[float] = field(default_factory=list)
    target: str = ""  # the target, in words
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(median=self.median, min=min(self.values) if self.values else None,
                 max=max(self.values) if self.values else None)  # fmt: skip
        return d


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def tag() -> str:
    return uuid.uuid4().hex[:8]


def settings():
    from tormenta.settings import load

    return load()


def machine() -> dict[str, Any]:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "cpu_model": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                           if line.startswith("model name")), platform.processor()),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }  # fmt: skip


def java_classpath(*components: str) -> str:
    from tormenta import jvm

    return os.pathsep.join(str(p) for c in components for p in jvm.jar_paths(c))


def run_java(main: str, args: list[str], components: tuple[str, ...], heap: str = "512m",
             timeout: float = 900, extra_jvm: list[str] | None = None) -> str:  # fmt: skip
    """Run a JVM tool from the Maven-resolved jars; returns its stdout (raises on failure)."""
    from tormenta.stack.services import HBASE_JDK17_FLAGS

    cmd = ["java", f"-Xmx{heap}", *HBASE_JDK17_FLAGS, *(extra_jvm or []), "-cp", java_classpath(*components), main, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{main} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    return res.stdout + "\n" + res.stderr


def write_results(name: str, doc: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    return path


class Stopwatch:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def stop_group(proc: subprocess.Popen, grace_s: float = 60) -> None:
    """Stop a process started in its own session and all it started (spark-submit's JVM and the
    Python driver): SIGTERM to the group, SIGKILL after ``grace_s``."""
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)

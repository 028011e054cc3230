"""Start, find and stop the stack's own processes.

Each started process gets a pid file (JSON: pid, start time, command). A process counts as ours
only when the pid is alive *and* its start time matches the file, so a recycled pid is never
signalled and ``down`` stops only what ``up`` started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int
    create_time: float
    cmd: list[str]

    def process(self) -> psutil.Process | None:
        """The live process this record describes, or None when it is gone or the pid was reused."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None


class ProcessManager:
    def __init__(self, run_dir: Path, logs_dir: Path) -> None:
        self.run_dir = run_dir
        self.logs_dir = logs_dir

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def tracked(self, name: str) -> Tracked | None:
        path = self.pid_file(name)
        try:
            data = json.loads(path.read_text())
            return Tracked(name, int(data["pid"]), float(data["create_time"]), list(data["cmd"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def running(self, name: str) -> psutil.Process | None:
        record = self.tracked(name)
        return record.process() if record else None

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
        """Start ``cmd`` detached in its own session, output appended to the service log."""
        if self.running(name):
            raise RuntimeError(f"{name} is already running")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # own process group: stop() reaches the children too
            )
        create_time = psutil.Process(proc.pid).create_time()
        self.pid_file(name).write_text(
            json.dumps({"pid": proc.pid, "create_time": create_time, "cmd": cmd})
        )
        return proc.pid

    def exited_early(self, name: str) -> bool:
        """True when a process we started is no longer alive (crashed during start-up)."""
        return self.tracked(name) is not None and self.running(name) is None

    def stop(self, name: str, timeout: float = 60.0) -> bool:
        """SIGTERM the process group, SIGKILL after ``timeout``. Returns True if something stopped."""
        proc = self.running(name)
        if proc is None:
            self.pid_file(name).unlink(missing_ok=True)
            return False
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            pgid = None
        members = [proc, *proc.children(recursive=True)]
        self._signal(pgid, members, signal.SIGTERM)
        _, alive = psutil.wait_procs(members, timeout=timeout)
        if alive:
            self._signal(pgid, alive, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=10)
        self.pid_file(name).unlink(missing_ok=True)
        return True

    @staticmethod
    def _signal(pgid: int | None, procs: list[psutil.Process], sig: int) -> None:
        # Only signal the group when it is the one we created (pgid == leader pid).
        if pgid is not None and procs and pgid == procs[0].pid:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass

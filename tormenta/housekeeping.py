"""Bounded disk for what the platform writes outside Kafka and HBase (those have retention and
TTLs): service logs, Airflow's task logs, and the batch archetype's landing and warehouse folders.

``sweep`` runs every hour as the ``tormenta_housekeeping`` DAG, and service logs are also rotated
by ``tormenta stack up`` before it starts anything. Settings (environment, with defaults):

    TORMENTA_LOG_MAX_MB        100  a service log (``var/logs/*.log``) larger than this is rotated
    TORMENTA_LOG_KEEP            3  rotated copies kept per service log (``.1`` newest)
    TORMENTA_TASK_LOG_DAYS      14  Airflow task logs older than this are deleted
    TORMENTA_WINDOW_DAYS         7  a batch window's landing and warehouse folders, untouched for
                                    this long, are deleted (a re-run lands the window again)

A running service keeps writing its log while it is rotated: its file is opened in append mode,
so the copy-then-truncate rotation below loses at most the lines written during the copy.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

DAG_ID = "tormenta_housekeeping"


@dataclass(frozen=True)
class Limits:
    log_max_mb: float = 100.0
    log_keep: int = 3
    task_log_days: float = 14.0
    window_days: float = 7.0

    @classmethod
    def from_env(cls) -> Limits:
        def number(name: str, default: float, kind=float):
            raw = os.environ.get(name, "").strip()
            try:
                value = kind(raw) if raw else default
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not a number") from exc
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
            return value

        return cls(number("TORMENTA_LOG_MAX_MB", cls.log_max_mb), number("TORMENTA_LOG_KEEP", cls.log_keep, int),
                   number("TORMENTA_TASK_LOG_DAYS", cls.task_log_days), number("TORMENTA_WINDOW_DAYS", cls.window_days))  # fmt: skip


def rotate_logs(logs_dir: Path, max_mb: float, keep: int) -> list[str]:
    """Rotate each ``*.log`` in ``logs_dir`` larger than ``max_mb``: ``x.log`` -> ``x.log.1`` ->
    ... -> ``x.log.<keep>`` (the oldest dropped), then truncate ``x.log`` in place."""
    rotated = []
    for log in sorted(logs_dir.glob("*.log")):
        if not log.is_file() or log.stat().st_size <= max_mb * 1024 * 1024:
            continue
        for i in range(keep, 0, -1):
            older = log.with_name(f"{log.name}.{i}")
            if i == keep:
                older.unlink(missing_ok=True)
            elif older.exists():
                older.replace(log.with_name(f"{log.name}.{i + 1}"))
        shutil.copyfile(log, log.with_name(f"{log.name}.1"))
        with log.open("r+b") as f:  # the writer appends (O_APPEND): it goes on at the new end
            f.truncate(0)
        rotated.append(log.name)
    return rotated


def prune_files(root: Path, days: float, now: float | None = None) -> int:
    """Delete files under ``root`` not modified for ``days``, then the folders left empty."""
    if not root.is_dir():
        return 0
    cutoff = (now or time.time()) - days * 86400
    removed = 0
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return removed


def prune_windows(home: Path, days: float, now: float | None = None) -> list[str]:
    """Delete the landing and warehouse folders of windows untouched for ``days`` (newest file)."""
    cutoff = (now or time.time()) - days * 86400
    removed = []
    for area in ("landing", "warehouse"):
        base = home / area
        if not base.is_dir():
            continue
        for window in sorted(p for p in base.iterdir() if p.is_dir()):
            newest = max((p.stat().st_mtime for p in window.rglob("*") if p.is_file()), default=window.stat().st_mtime)
            if newest < cutoff:
                shutil.rmtree(window)
                removed.append(f"{area}/{window.name}")
    return removed


def sweep(home: Path, logs_dir: Path, limits: Limits | None = None) -> dict:
    """One pass of everything above; returns what it did (the DAG logs it)."""
    limits = limits or Limits.from_env()
    return {
        "rotated_logs": rotate_logs(logs_dir, limits.log_max_mb, limits.log_keep),
        "task_log_files_deleted": prune_files(logs_dir / "airflow", limits.task_log_days),
        "windows_deleted": prune_windows(home, limits.window_days),
        "limits": limits.__dict__,
    }

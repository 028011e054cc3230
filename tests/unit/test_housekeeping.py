"""Bounded disk outside Kafka and HBase: log rotation and the pruning of old files and windows."""

from __future__ import annotations

import os
import time

import pytest

from tormenta.housekeeping import Limits, prune_files, prune_windows, rotate_logs, sweep

pytestmark = pytest.mark.unit


def test_a_large_log_is_rotated_and_a_writer_in_append_mode_goes_on(tmp_path):
    log = tmp_path / "kafka.log"
    writer = log.open("ab")  # as the process manager opens a service's log
    writer.write(b"x" * 3000)
    writer.flush()
    (tmp_path / "small.log").write_bytes(b"y" * 10)
    assert rotate_logs(tmp_path, max_mb=0.001, keep=2) == ["kafka.log"]
    assert (tmp_path / "kafka.log.1").read_bytes() == b"x" * 3000
    assert log.stat().st_size == 0 and (tmp_path / "small.log").stat().st_size == 10
    writer.write(b"after")
    writer.flush()
    assert log.read_bytes() == b"after"  # at the new end, no hole of 3000 zero bytes
    for _ in range(3):
        writer.write(b"z" * 2000)
        writer.flush()
        rotate_logs(tmp_path, max_mb=0.001, keep=2)
    assert sorted(p.name for p in tmp_path.glob("kafka.log*")) == ["kafka.log", "kafka.log.1", "kafka.log.2"]
    writer.close()


def _age(path, days):
    t = time.time() - days * 86400
    os.utime(path, (t, t))


def test_old_files_go_and_empty_folders_with_them(tmp_path):
    old = tmp_path / "dag_id=x" / "run_id=1" / "attempt=1.log"
    new = tmp_path / "dag_id=x" / "run_id=2" / "attempt=1.log"
    for p in (old, new):
        p.parent.mkdir(parents=True)
        p.write_text("log")
    _age(old, 20)
    assert prune_files(tmp_path, days=14) == 1
    assert not old.parent.exists() and new.exists()


def test_a_window_untouched_for_the_retention_is_deleted_a_recent_one_kept(tmp_path):
    for area in ("landing", "warehouse"):
        for label, age in (("w20261001T0000-20261002T0000", 30), ("w20261126T0000-20261127T0000", 1)):
            f = tmp_path / area / label / "raw" / "part-0"
            f.parent.mkdir(parents=True)
            f.write_text("data")
            _age(f, age)
    assert prune_windows(tmp_path, days=7) == ["landing/w20261001T0000-20261002T0000",
                                                "warehouse/w20261001T0000-20261002T0000"]  # fmt: skip
    assert (tmp_path / "landing" / "w20261126T0000-20261127T0000").exists()


def test_limits_come_from_the_environment_and_refuse_nonsense(monkeypatch, tmp_path):
    monkeypatch.setenv("TORMENTA_WINDOW_DAYS", "2")
    assert Limits.from_env().window_days == 2
    monkeypatch.setenv("TORMENTA_LOG_KEEP", "-1")
    with pytest.raises(ValueError, match="TORMENTA_LOG_KEEP"):
        Limits.from_env()
    monkeypatch.delenv("TORMENTA_LOG_KEEP")
    done = sweep(tmp_path, tmp_path / "logs")
    assert done["windows_deleted"] == [] and done["limits"]["window_days"] == 2

import json
import sys
import time

import psutil
import pytest

from tormenta.stack.process import ProcessManager

pytestmark = pytest.mark.unit


@pytest.fixture
def pm(tmp_path):
    return ProcessManager(tmp_path / "run", tmp_path / "logs")


def test_start_track_stop(pm):
    code = "import time, subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    pid = pm.start("sleeper", [sys.executable, "-c", code], env={})
    proc = pm.running("sleeper")
    assert proc is not None and proc.pid == pid
    time.sleep(0.5)
    children = proc.children(recursive=True)
    assert children, "the child process should exist"
    assert pm.stop("sleeper", timeout=5)
    assert pm.running("sleeper") is None
    assert not pm.pid_file("sleeper").exists()
    for child in children:  # the whole process group is gone, no orphan
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_recycled_pid_is_never_signalled(pm):
    """A pid file whose start time does not match the live process is not ours."""
    me = psutil.Process()
    pm.run_dir.mkdir(parents=True)
    pm.pid_file("ghost").write_text(
        json.dumps({"pid": me.pid, "create_time": me.create_time() - 1000, "cmd": ["x"]})
    )
    assert pm.running("ghost") is None
    assert pm.stop("ghost") is False  # and we are still alive to assert it
    assert not pm.pid_file("ghost").exists()


def test_crash_during_start_is_detected(pm):
    pm.start("crasher", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], env={})
    deadline = time.monotonic() + 10
    while not pm.exited_early("crasher") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pm.exited_early("crasher")
    assert "boom" in pm.log_file("crasher").read_text()


def test_cannot_start_twice(pm):
    pm.start("once", [sys.executable, "-c", "import time; time.sleep(30)"], env={})
    try:
        with pytest.raises(RuntimeError, match="already running"):
            pm.start("once", [sys.executable, "-c", "pass"], env={})
    finally:
        pm.stop("once", timeout=5)

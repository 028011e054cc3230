"""README, "The CLI": every sub-command the block lists is run against the real stack, here or in
the test named beside it, and a sub-command added to the block without a test fails here."""

from __future__ import annotations

import re
import subprocess

import pytest

from tormenta import smoke
from tormenta.settings import REPO_ROOT

pytestmark = pytest.mark.integration

TORMENTA = str(REPO_ROOT / ".venv" / "bin" / "tormenta")
# sub-command -> where it runs for real
ELSEWHERE = {
    "prepare": "tests/integration/test_prepare.py (exactly as the README writes it)",
    "stream": "tests/integration/test_readme_try_it.py (exactly as the README writes it)",
    "capacity": "tests/unit/test_readme_commands.py (the README's example is its real output)",
    "demo": "tests/e2e/test_make_up.py (`make up` ends with it, exactly as the README writes it)",
}
HERE = ("stack", "jars", "smoke", "airflow")


def readme_subcommands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"## The CLI\n\n```\n(.*?)^```", text, flags=re.S | re.M)
    assert block, "the README lost its CLI block"
    return [line.split()[1] for line in block.group(1).splitlines() if line.startswith("tormenta ")]


def tormenta(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([TORMENTA, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def test_every_subcommand_of_the_readme_is_accounted_for():
    listed = readme_subcommands()
    assert set(listed) == set(HERE) | set(ELSEWHERE), f"README lists {listed}"


def test_stack_status_and_logs(stack):
    status = tormenta("stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"^kafka\s+\d+ healthy", status.stdout, flags=re.M), status.stdout
    logs = tormenta("stack", "logs", "kafka", "-n", "5")
    assert logs.returncode == 0 and logs.stdout.startswith("==> ") and "kafka.log <==" in logs.stdout
    assert 1 <= len(logs.stdout.splitlines()) <= 6
    unknown = tormenta("stack", "logs", "no-such-service")
    assert unknown.returncode == 2 and "unknown service" in unknown.stderr


def test_jars_when_they_are_resolved_already(stack):
    done = tormenta("jars")
    assert done.returncode == 0, done.stderr[-2000:]


def test_smoke_runs_the_smoke_dag_to_success(stack):
    done = tormenta("smoke", "--events", "200", timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert re.search(rf"\[smoke\] success: .*/dags/{smoke.DAG_ID}/runs/", done.stdout), done.stdout


def test_airflow_runs_the_airflow_cli_on_the_stacks_home(stack):
    done = tormenta("airflow", "dags", "list", "-o", "plain", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert smoke.DAG_ID in done.stdout

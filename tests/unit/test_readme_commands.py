"""README commands that need no services: the `tormenta capacity` example is the command's real
output, and `tormenta stream` passes the job's arguments through."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tormenta import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> tuple[list[str], list[str]]:
    """The first ```-block of the README that starts with ``$ tormenta capacity``: argv, output lines."""
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), flags=re.S | re.M):
        lines = block.rstrip("\n").splitlines()
        if lines and lines[0].startswith("$ tormenta capacity"):
            return shlex.split(lines[0][2:])[1:], lines[1:]
    raise AssertionError("no `$ tormenta capacity` example in the README")


def test_the_readme_capacity_example_is_what_the_command_prints(monkeypatch, capsys):
    argv, expected = _example()
    monkeypatch.setenv("TORMENTA_CORES", "2")  # the README says: on a 2-core machine
    for name in ("TORMENTA_STREAM_CORES", "TORMENTA_EVENTS_PER_CORE", "TORMENTA_BATCH_FIXED_S"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.splitlines() == expected


@pytest.mark.parametrize("interval", ["PT1S", "PT10S"])
def test_the_fixed_part_of_a_batch_is_in_the_command_output(monkeypatch, capsys, interval):
    monkeypatch.setenv("TORMENTA_BATCH_FIXED_S", "3")
    assert cli.main(["capacity", "--rate", "100", "--interval", interval]) == 0
    out = capsys.readouterr().out
    assert "3 s fixed per batch" in out
    assert ("a 1 s interval is not held at any rate" in out) == (interval == "PT1S")


def test_job_arguments_pass_through_tormenta_stream_in_order(monkeypatch):
    """README: ``tormenta stream --interval "1 second"`` (it exited 2, "unrecognized arguments")."""
    seen = {}
    monkeypatch.setattr(cli.os, "execve", lambda exe, cmd, env: seen.update(cmd=cmd))
    assert cli.main(["stream", "--interval", "1 second", "--master", "local[1]", "--run-seconds", "5"]) == 0
    cmd = seen["cmd"]
    assert cmd[cmd.index("--master") + 1] == "local[1]"
    job = cmd[next(i for i, a in enumerate(cmd) if a.endswith("streaming.py")) + 1:]
    assert job[:4] == ["--interval", "1 second", "--run-seconds", "5"]
    with pytest.raises(SystemExit):
        cli.main(["capacity", "--rate", "1", "--no-such-option"])

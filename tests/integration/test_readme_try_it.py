"""README, "The micro-batch archetype", "Try it on the running stack": every line of that block,
exactly as written, in order, against the real stack. A line ending in ``&`` runs in the
background; the last one (the streaming job, "Ctrl-C stops it") runs until the events the block
produced are stored, then gets a Ctrl-C (SIGINT to its process group, as a terminal sends it)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time

import pytest

from tormenta import metrics
from tormenta.contracts import DEFAULT_NAMESPACE, query_name, table_name
from tormenta.settings import REPO_ROOT

pytestmark = pytest.mark.integration

README = REPO_ROOT / "README.md"


def try_it_lines() -> list[list[str]]:
    """The block's commands: argv lists (comments dropped), a trailing "&" kept as its own item."""
    text = README.read_text()
    block = re.search(r"Try it on the running stack:\n\n```bash\n(.*?)^```", text, flags=re.S | re.M)
    assert block, "the README lost its 'Try it on the running stack' block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def stored_since(conn, t0_ms: int) -> dict[str, int]:
    """Valid records (stored now, or stored before: a replayed event) of the default namespace's
    query in batches written after ``t0_ms``, by kind."""
    table = conn.table(table_name("microbatch_metrics"))
    by_kind: dict[str, int] = {}
    prefix = f"{query_name(DEFAULT_NAMESPACE)}|".encode()
    for _key, cells in table.scan(row_prefix=prefix, columns=[b"d:result"]):
        r = json.loads(cells[b"d:result"])
        if r["written_at"] >= t0_ms:
            for kind, counts in r.get("by_kind", {}).items():
                by_kind[kind] = by_kind.get(kind, 0) + counts.get("valid", 0)
    return by_kind


def test_the_try_it_block_runs_as_written(stack, hbase):
    lines = try_it_lines()
    assert lines[0] == [".venv/bin/tormenta", "prepare"]
    background: list[subprocess.Popen] = []
    stream = None
    t0_ms = int(time.time() * 1000)
    try:
        for argv in lines[:-1]:
            if argv[-1] == "&":
                background.append(subprocess.Popen(argv[:-1], cwd=REPO_ROOT, start_new_session=True,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))  # fmt: skip
                time.sleep(2)
                assert background[-1].poll() is None, f"{argv} ended at once: {background[-1].stderr.read()[-2000:]}"
                continue
            done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stderr[-3000:]}"
            if "ingestors.fleet" in argv:
                accepted = json.loads(done.stdout.strip().splitlines()[-1])["positions_accepted"]
                assert accepted > 1000, done.stdout
        argv = lines[-1]
        assert argv[:2] == [".venv/bin/tormenta", "stream"], "the block should end with the streaming job"
        stream = subprocess.Popen(argv, cwd=REPO_ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 600
        while True:
            by_kind = stored_since(hbase, t0_ms)
            # every phone position the fleet got accepted is stored, and the hot page's comments flow
            if by_kind.get("geo.position", 0) >= accepted and by_kind.get("social.comment", 0) > 0:
                break
            assert stream.poll() is None, f"tormenta stream ended (exit {stream.returncode}): {stream.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, f"not all stored in 600 s: {by_kind}, {accepted} positions accepted"
            time.sleep(5)
        os.killpg(stream.pid, signal.SIGINT)  # Ctrl-C
        try:
            stream.wait(120)
        except subprocess.TimeoutExpired:
            pytest.fail("Ctrl-C did not stop tormenta stream within 120 s")
    finally:
        for proc in [*background, *([stream] if stream else [])]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    latest = metrics.latest(hbase, DEFAULT_NAMESPACE, query_name(DEFAULT_NAMESPACE))
    assert latest and latest["result"]["read"] == latest["result"]["good"] + latest["result"]["dead"]

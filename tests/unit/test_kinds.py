"""A kind is one folder: the third kind of ``tests/third_kind/kinds/traffic/`` (a folder no other
file names) is found by every part of the platform once its directory is on ``PYTHONPATH``, and
without it the platform has exactly the two product kinds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tormenta.settings import REPO_ROOT

pytestmark = pytest.mark.unit

THIRD = Path(__file__).parents[1] / "third_kind"

PROBE = """
import json
from tormenta import contracts, microbatch
from ingestors import runner
from spark_jobs import rules
p = microbatch.params()
print(json.dumps({
    "kinds": sorted(contracts.KINDS),
    "topics": sorted(contracts.topics_for("ns")),
    "tables": sorted(contracts.TABLES),
    "rules": sorted(rules.RULES), "features": rules.FEATURES,
    "commands": sorted(runner.commands()),
    "sources": p["sources"].value, "params": list(p),
    "ingestors": microbatch.plan({k: v.value for k, v in p.items()}).names,
}))
"""


def probe(extra_path: Path | None = None) -> dict:
    path = [str(extra_path)] if extra_path else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(REPO_ROOT)])}
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                         timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


def test_the_product_has_its_two_kinds():
    got = probe()
    assert got["kinds"] == ["geo.position", "social.comment"]
    assert got["commands"] == ["geo-http", "social"] and got["sources"] == ["geo", "social"]
    assert not any("traffic" in t for t in got["tables"] + got["topics"] + got["ingestors"])


def test_a_third_kind_in_a_folder_of_its_own_is_found_everywhere():
    got = probe(THIRD)
    assert got["kinds"] == ["geo.position", "social.comment", "traffic.report"]
    assert "ns.traffic.reports" in got["topics"]  # `tormenta prepare` makes it
    assert {"traffic_reports", "traffic_roads"} <= set(got["tables"])  # ... and these
    assert "traffic.report" in got["rules"] and got["features"]["traffic.report"] == [{"serious": "severity >= 3"}]
    assert "traffic" in got["commands"]  # python -m ingestors.runner traffic
    assert got["sources"] == ["geo", "social", "traffic"] and "traffic_rate" in got["params"]
    assert "traffic-1" in got["ingestors"]  # the DAG's default run starts its ingestor


def test_no_file_outside_the_kind_folder_names_it():
    names = ("traffic", "ReportFeed")
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    naming = [f for f in tracked.stdout.split()
              if f.endswith(".py") and not f.startswith(("tests/third_kind/", "tests/"))
              and any(n in (REPO_ROOT / f).read_text() for n in names)]  # fmt: skip
    assert naming == []


def test_a_broken_kind_folder_is_a_clear_import_error(tmp_path):
    (tmp_path / "kinds" / "broken").mkdir(parents=True)
    (tmp_path / "kinds" / "broken" / "__init__.py").write_text("")
    (tmp_path / "kinds" / "broken" / "contract.py").write_text("KIND = 'not a kind'\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    res = subprocess.run([sys.executable, "-c", "import tormenta.contracts"], capture_output=True, text=True,
                         env=env, cwd=REPO_ROOT, timeout=120)  # fmt: skip
    assert res.returncode != 0 and "kinds.broken.contract must define KIND, an EventKind" in res.stderr


def test_a_kind_without_rules_stops_the_jobs_at_import(tmp_path):
    folder = tmp_path / "kinds" / "norules"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    contract = (THIRD / "kinds" / "traffic" / "contract.py").read_text()
    (folder / "contract.py").write_text(contract.replace("traffic.report", "norules.thing")
                                        .replace("tormenta.traffic.reports", "tormenta.norules.things")
                                        .replace('"traffic_', '"norules_'))  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    res = subprocess.run([sys.executable, "-c", "import spark_jobs.rules"], capture_output=True, text=True,
                         env=env, cwd=REPO_ROOT, timeout=300)  # fmt: skip
    assert res.returncode != 0 and "event kind norules.thing has no rules" in res.stderr


@pytest.mark.parametrize("job", ["streaming", "batch", "smoke"])
def test_each_job_script_finds_the_kinds(job):
    """spark-submit runs a job as a script, with its own folder first on sys.path: no module there
    may shadow the ``kinds`` package (``spark_jobs/kinds.py`` did)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    res = subprocess.run([sys.executable, str(REPO_ROOT / "spark_jobs" / f"{job}.py"), "--help"], capture_output=True,
                         text=True, env=env, cwd=REPO_ROOT, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]

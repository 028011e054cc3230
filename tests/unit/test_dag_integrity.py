"""Every DAG file imports without error and defines what the platform expects of it."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), safe_mode=False)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_file_defines_one_dag(dagbag):
    files = sorted(p.name for p in DAGS.glob("*.py"))
    assert files, "no DAG files found"
    by_file = {}
    for dag in dagbag.dags.values():
        by_file.setdefault(Path(dag.fileloc).name, []).append(dag.dag_id)
    assert sorted(by_file) == files
    assert all(len(ids) == 1 for ids in by_file.values()), by_file


@pytest.mark.contract(6)
def test_dags_are_documented_and_single_run(dagbag):
    for dag in dagbag.dags.values():
        assert dag.doc_md, f"{dag.dag_id} has no doc_md"
        assert dag.max_active_runs == 1, dag.dag_id
        assert "tormenta" in dag.tags


def test_dag_files_do_no_heavy_imports_at_module_level():
    banned = ("import pyspark", "import happybase", "import confluent_kafka", "from pyspark", "from confluent_kafka")
    for path in DAGS.glob("*.py"):
        top_level = [line for line in path.read_text().splitlines() if not line.startswith((" ", "\t"))]
        assert not [line for line in top_level if line.startswith(banned)], path.name

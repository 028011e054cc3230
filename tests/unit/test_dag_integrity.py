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


def test_parsing_the_dag_files_imports_no_client_library():
    """The DAG processor parses every file often: Spark, HBase and Kafka clients load in tasks only."""
    import subprocess
    import sys

    code = ("import runpy, sys\n"
            f"for path in {sorted(str(p) for p in DAGS.glob('*.py'))!r}:\n    runpy.run_path(path)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyspark', 'happybase', 'confluent_kafka'}))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"

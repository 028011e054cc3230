"""Imports go one way: ``tormenta/`` is the bottom layer, the jobs and the ingestors sit on it side
by side, and the DAGs, the UI plugin and the benchmarks sit on top. Every import counts, also the
ones inside functions (a DAG file imports lazily, and so would a back edge).

A kind's folder (``kinds/<kind>/``) spans the layers, one file per layer: its contract and its DAG
part sit on the core, its rules on the jobs, its source client on the ingestors. Nothing below the
DAGs imports a kind: the core finds them by name (``tormenta.contracts.discover``)."""

from __future__ import annotations

import ast
from pathlib import Path

from tormenta.settings import REPO_ROOT

FOLDERS = ("tormenta", "spark_jobs", "ingestors", "kinds", "dags", "plugins", "bench")
MAY_IMPORT = {
    "tormenta": set(),
    "spark_jobs": {"tormenta"},
    "ingestors": {"tormenta"},
    "kinds": {"tormenta"},  # the contract, the DAG part and the package files
    "kinds/rules.py": {"tormenta", "spark_jobs"},
    "kinds/source.py": {"tormenta", "ingestors"},
    "dags": {"tormenta", "ingestors", "kinds"},  # the jobs are spark-submitted by path, never imported
    "plugins": {"tormenta"},
    "bench": {"tormenta", "spark_jobs", "ingestors", "kinds"},
}


def allowed(folder: str, path: Path) -> set[str]:
    return MAY_IMPORT.get(f"{folder}/{path.name}", MAY_IMPORT[folder]) if folder == "kinds" else MAY_IMPORT[folder]


def project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level folder) of every absolute import of a project folder in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in FOLDERS]
    return out


def back_edges(root: Path) -> list[str]:
    found = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            for line, target in project_imports(path):
                if target != folder and target not in allowed(folder, path):
                    found.append(f"{path.relative_to(root)}:{line} imports {target}")
    return found


def test_the_core_imports_nothing_above_it_and_the_layers_point_down():
    assert back_edges(REPO_ROOT) == []


def test_a_back_edge_is_found_even_inside_a_function(tmp_path):
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
    (tmp_path / "tormenta" / "x.py").write_text("def f():\n    from ingestors.producer import EventProducer\n")
    (tmp_path / "ingestors" / "y.py").write_text("import spark_jobs.rules\nimport tormenta.kafka\n")
    (tmp_path / "dags" / "z.py").write_text("from tormenta import batch\nfrom . import local\n")
    (tmp_path / "kinds" / "k").mkdir()
    (tmp_path / "kinds" / "k" / "contract.py").write_text("from tormenta.eventkind import EventKind\n")
    (tmp_path / "kinds" / "k" / "rules.py").write_text("from spark_jobs.context import text\n")
    (tmp_path / "kinds" / "k" / "dag.py").write_text("\n\nfrom ingestors.producer import EventProducer\n")
    (tmp_path / "spark_jobs" / "w.py").write_text("import kinds.k.rules\n")
    assert back_edges(tmp_path) == ["tormenta/x.py:2 imports ingestors", "spark_jobs/w.py:1 imports kinds",
                                    "ingestors/y.py:1 imports spark_jobs", "kinds/k/dag.py:3 imports ingestors"]

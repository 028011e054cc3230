"""Imports go one way: ``tormenta/`` is the bottom layer, the jobs and the ingestors sit on it side
by side, and the DAGs, the UI plugin and the benchmarks sit on top. Every import counts, also the
ones inside functions (a DAG file imports lazily, and so would a back edge)."""

from __future__ import annotations

import ast
from pathlib import Path

from tormenta.settings import REPO_ROOT

FOLDERS = ("tormenta", "spark_jobs", "ingestors", "dags", "plugins", "bench")
MAY_IMPORT = {
    "tormenta": set(),
    "spark_jobs": {"tormenta"},
    "ingestors": {"tormenta"},
    "dags": {"tormenta", "ingestors"},  # the jobs are spark-submitted by path, never imported
    "plugins": {"tormenta"},
    "bench": {"tormenta", "spark_jobs", "ingestors"},
}


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
                if target != folder and target not in MAY_IMPORT[folder]:
                    found.append(f"{path.relative_to(root)}:{line} imports {target}")
    return found


def test_the_core_imports_nothing_above_it_and_the_layers_point_down():
    assert back_edges(REPO_ROOT) == []


def test_a_back_edge_is_found_even_inside_a_function(tmp_path):
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
    (tmp_path / "tormenta" / "x.py").write_text("def f():\n    from ingestors.producer import EventProducer\n")
    (tmp_path / "ingestors" / "y.py").write_text("import spark_jobs.kinds\nimport tormenta.kafka\n")
    (tmp_path / "dags" / "z.py").write_text("from tormenta import batch\nfrom . import local\n")
    assert back_edges(tmp_path) == ["tormenta/x.py:2 imports ingestors", "ingestors/y.py:1 imports spark_jobs"]

"""The README's reliability-contract table is the truth about the tests: every test it names for
promise N carries ``@pytest.mark.contract(N)``, every such test is named, and a promise with no
test says "not yet"."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def marked_tests() -> dict[int, set[str]]:
    """contract number -> names of the test functions marked with it, from the tests' source."""
    out: dict[int, set[str]] = defaultdict(set)
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "contract"
                        and dec.args and isinstance(dec.args[0], ast.Constant)):  # fmt: skip
                    out[dec.args[0].value].add(node.name)
    return out


def readme_rows() -> dict[int, tuple[set[str], str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## The reliability contract, test by test", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"^\| (\d+) \| .* \| (.*) \| (.*) \|$", line)
        if m:
            rows[int(m.group(1))] = (set(re.findall(r"`(test_\w+)`", m.group(2))), m.group(3))
    return rows


def test_every_promise_has_a_row_and_its_tests_are_exactly_the_marked_ones():
    rows, marked = readme_rows(), marked_tests()
    assert sorted(rows) == list(range(1, 16))
    assert set(marked) <= set(rows), f"marks with no promise: {sorted(set(marked) - set(rows))}"
    for n, (named, status) in rows.items():
        assert named == marked.get(n, set()), f"promise {n}: README names {sorted(named)}, marked {sorted(marked.get(n, ()))}"
        if not named:
            assert status.startswith("not yet"), f"promise {n} has no test but says {status!r}"
        else:
            assert status.startswith(("proven", "partly")), f"promise {n}: {status!r}"

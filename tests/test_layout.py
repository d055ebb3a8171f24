"""What stands beside the layers stays beside: bench and leadrelay.testing never import the tests.

The bench uses leadrelay's public interfaces and the test support in ``leadrelay.testing``;
the test support is plain Python (no pytest, no ``tests``); and import-linter's contract that
product code never imports the test support names every module of leadrelay but that one.
"""

from __future__ import annotations

import ast
import pkgutil
import tomllib
from pathlib import Path

import leadrelay
from tests.conftest import REPO


def imported(path: Path) -> set[str]:
    """The absolute module names ``path`` imports (relative imports stay inside its package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def importers(folder: Path, *roots: str) -> list[str]:
    """``file: module`` for every import in ``folder`` of one of ``roots`` or below."""
    return [
        f"{path.relative_to(REPO)}: {module}"
        for path in sorted(folder.rglob("*.py"))
        for module in sorted(imported(path))
        if module.split(".")[0] in roots
    ]


def test_imported_reads_every_form_of_import(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "import tests\nimport os, tests.helpers as h\nfrom tests.inbox import support\n"
        "from . import sibling\ndef f():\n    from tests import conftest\n"
    )
    assert imported(source) == {"tests", "os", "tests.helpers", "tests.inbox"}


def test_the_bench_never_imports_the_tests() -> None:
    assert importers(REPO / "bench", "tests") == []


def test_the_test_support_needs_neither_the_tests_nor_pytest() -> None:
    assert importers(REPO / "leadrelay" / "testing", "tests", "pytest", "_pytest") == []


def test_the_contract_names_every_module_but_the_test_support() -> None:
    """A new module is product code until someone says otherwise: the contract must list it."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (found,) = [c for c in contracts if c["name"] == "product code never imports the test support"]
    modules = {f"leadrelay.{m.name}" for m in pkgutil.iter_modules(leadrelay.__path__)}
    assert found["forbidden_modules"] == ["leadrelay.testing"]
    assert set(found["source_modules"]) == modules - {"leadrelay.testing"}

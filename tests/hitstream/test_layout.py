"""The house's rules, checked: layers point down, and rooms on one floor stay apart."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import FLOORS, ROOT


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def _arrows() -> list[tuple[str, str, str]]:
    """(package, module, imported package) for every import between hitstream's packages."""
    return [
        (package, str(path.relative_to(ROOT)), imported)
        for package in FLOORS
        for path in sorted((ROOT / package).rglob("*.py"))
        for imported in sorted(_imports(path) & FLOORS.keys() - {package})
    ]


def test_every_package_has_a_floor() -> None:
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == FLOORS.keys()


def test_no_package_imports_one_above_or_beside_it() -> None:
    offenders = [
        f"{module} imports {imported}"
        for package, module, imported in _arrows()
        if FLOORS[imported] >= FLOORS[package]
    ]
    assert not offenders


def test_the_foundation_imports_no_room() -> None:
    assert not [module for package, module, _ in _arrows() if package == "foundation"]

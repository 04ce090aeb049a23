"""The house's rules, checked: the foundation imports no room; rooms stay apart."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = {"ingest", "consumers", "reporting", "sites", "schemas", "dashboard"}
# The composition root assembles the rooms: it alone may import them.
COMPOSITION_ROOT = {"app.py", "cli.py", "openapi.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_foundation_imports_no_room() -> None:
    offenders = {
        path.name: sorted(_imports(path) & ROOMS)
        for path in (ROOT / "hitstream").glob("*.py")
        if path.name not in COMPOSITION_ROOT and _imports(path) & ROOMS
    }
    assert not offenders


def test_reporting_and_ingest_do_not_import_each_other() -> None:
    for room, other in (("reporting", "ingest"), ("ingest", "reporting"), ("sites", "ingest")):
        for path in (ROOT / room).glob("*.py"):
            assert other not in _imports(path), f"{room}/{path.name} imports {other}"

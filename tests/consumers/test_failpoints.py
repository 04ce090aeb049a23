"""The fault-injection hook is the tests' own: installed by a test-launched process only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from consumers.writer import BatchWriter
from tests.failpoints import POINTS, failpoint, install
from tests.helpers import FLOORS, ROOT


def test_no_production_module_mentions_failpoints() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in FLOORS
        for path in sorted((ROOT / package).rglob("*"))
        if path.is_file()
        and path.suffix != ".pyc"
        and "failpoint" in path.read_text(errors="replace").lower()
    ]
    assert not offenders


def test_the_wrapper_runs_this_module_with_a_known_point() -> None:
    assert failpoint("kill-after-insert") == (
        sys.executable,
        "-m",
        "tests.failpoints",
        "kill-after-insert",
    )
    with pytest.raises(ValueError, match="unknown failpoint"):
        failpoint("kill-somewhere")


@pytest.mark.parametrize("point", POINTS)
def test_install_patches_the_insert_step(point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BatchWriter, "insert", BatchWriter.insert)
    before = BatchWriter.insert
    install(point)
    assert BatchWriter.insert is not before


def test_a_wrapped_command_runs_hitstream() -> None:
    """What comes after the point and the executable is hitstream's own command line."""
    done = subprocess.run(
        [*failpoint("kill-before-insert"), "hitstream", "--help"],
        capture_output=True,
        check=True,
        text=True,
        cwd=ROOT,
    )
    assert "consume" in done.stdout

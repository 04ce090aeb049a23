"""The Lua loader: scripts come from package data, shared rules in front."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from foundation import lua

ROOT = Path(__file__).resolve().parents[2]


def test_a_script_comes_after_the_rules_it_needs() -> None:
    clock = lua.load("sites", "redis_clock")
    rules = lua.load("sites", "key_rules")
    script = lua.load("sites", "verify_key", needs=(clock, rules))
    own = (ROOT / "sites" / "lua" / "verify_key.lua").read_text()
    assert script == f"{clock}\n{rules}\n{own}"
    assert script.index("local function now_ms") < script.index("local function key_is_valid")
    assert lua.load("sites", "verify_key") == own


def test_an_unknown_script_is_an_error() -> None:
    with pytest.raises(FileNotFoundError):
        lua.load("sites", "no_such_script")


def test_every_lua_file_is_package_data() -> None:
    """A `.lua` file left out of pyproject's package-data would be missing from a wheel."""
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    files = sorted(ROOT.glob("*/lua/*.lua"))
    assert files
    for path in files:
        package = path.parent.parent.name
        assert any(path.match(f"{package}/{pattern}") for pattern in shipped.get(package, ()))

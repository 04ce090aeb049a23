"""Lua scripts for Redis, kept as `.lua` files in a package's `lua/` folder (package data)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files


def load(package: str, name: str, needs: Sequence[str] = ()) -> str:
    """The script `<package>/lua/<name>.lua`, after the shared rules it calls (`needs`:
    other files' text, loaded the same way) in the order given."""
    script = files(package).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
    return "\n".join([*needs, script])

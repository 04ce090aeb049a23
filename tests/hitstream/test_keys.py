"""Every Redis key comes from hitstream/keys.py and starts with the one prefix."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hitstream.keys import RedisKeys

ROOT = Path(__file__).resolve().parents[2]
# What a key name spelt outside keys.py would look like: a ':' and one of the key words.
KEY_NAME = re.compile(r":(events|dead|dedup|plans|sites|keys|origins|registry|ratelimit|health)\b")
CODE = ["hitstream", "ingest", "consumers", "reporting", "schemas", "sites"]


def _all_names(keys: RedisKeys) -> list[str]:
    names = [
        getattr(keys, name)
        for name, member in vars(RedisKeys).items()
        if isinstance(member, property)
    ]
    return [*names, keys.plans("g"), keys.rate_limit("ip:1.2.3.4")]


def test_every_key_derives_from_the_prefix_and_two_prefixes_share_nothing() -> None:
    one, two = _all_names(RedisKeys("one:")), _all_names(RedisKeys("two:"))
    assert all(name.startswith("one:") for name in one)
    assert all(name.startswith("two:") for name in two)
    assert len(set(one)) == len(one), "each key has its own name"
    assert not set(one) & set(two)


def test_no_module_but_keys_spells_a_key_name() -> None:
    """Key names are not built anywhere else: no string literal outside keys.py looks
    like `<something>:<key word>`."""
    offenders = []
    for room in CODE:
        for path in (ROOT / room).rglob("*.py"):
            if path.name == "keys.py" and room == "hitstream":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value
                    if KEY_NAME.search(text):
                        offenders.append(f"{path.relative_to(ROOT)}: {text[:40]!r}")
    assert not offenders

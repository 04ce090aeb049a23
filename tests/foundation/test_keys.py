"""Every Redis key comes from foundation/keys.py and starts with the one prefix."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
from redis.crc import key_slot

from foundation.keys import SLOTS, RedisKeys, ShardKeys, shard_of
from tests.helpers import FLOORS, ROOT

OWNER = ROOT / "foundation" / "keys.py"
CODE = [ROOT / package for package in FLOORS]  # every package hitstream ships
# The members of RedisKeys and ShardKeys that are not key names.
NOT_KEYS = {
    "shard", "shard_for", "all_shards", "legacy", "legacy_pattern", "from_legacy",
    "LEGACY_KINDS", "_control", "tag", "name",
}  # fmt: skip


def _every_member_name(keys: RedisKeys) -> list[str]:
    """A name of each key kind RedisKeys and ShardKeys can make (the members that take
    an argument are given one), found by walking the classes: a new kind is in it."""
    made = []
    for owner, cls in ((keys, RedisKeys), (keys.shard(0), ShardKeys), (keys.legacy, ShardKeys)):
        for member, value in vars(cls).items():
            if member.startswith("__") or member in NOT_KEYS:
                continue
            if isinstance(value, property):
                made.append(getattr(owner, member))
            elif callable(value):
                made.append(getattr(owner, member)("x"))
    return made


def _key_word(name: str, prefix: str) -> str:
    """The kind of a key name: what follows its hash tag (or a legacy name's prefix), up
    to a ':' (`{p:c}salt:2026-12-07` -> `salt`)."""
    rest = name.split("}", 1)[1] if name.startswith("{") else name.removeprefix(prefix)
    return rest.split(":", 1)[0]


KEY_WORDS = sorted(
    {_key_word(name, "p:") for name in _every_member_name(RedisKeys("p:", 2))},
    key=lambda word: (-len(word), word),
)
# What a key name spelt outside keys.py would look like: a ':' or '}' and a key word
# that ends the text or a part of the name (prose such as Plausible's "event:goals." is
# no key).
KEY_NAME = re.compile(r"[:}](" + "|".join(re.escape(word) for word in KEY_WORDS) + r")(?![.\w])")


def _shard_names(shard: ShardKeys) -> list[str]:
    return [
        shard.stream,
        shard.dead_letters,
        shard.plans("g"),
        shard.dedup + "site:1",
        shard.visits + "site:1",
        shard.numbers + "site:20454",
        shard.calls + "ab12",
    ]


def _control_names(keys: RedisKeys) -> list[str]:
    names = [
        getattr(keys, name)
        for name, member in vars(RedisKeys).items()
        if isinstance(member, property) and name not in ("all_shards", "legacy", "_control")
    ]
    return [
        *names,
        keys.rate_limit("ip:1.2.3.4"),
        keys.session("d"),
        keys.queue_sample(10),
        keys.salt("2026-12-07"),
        keys.goals("site"),
        keys.goals_lock("site"),
    ]


def _all_names(keys: RedisKeys) -> list[str]:
    shards = [name for shard in keys.all_shards for name in _shard_names(shard)]
    return [*_control_names(keys), *shards]


def _tag(name: str) -> str:
    """The hash tag Redis Cluster hashes `name` by."""
    assert name.startswith("{"), name
    return name[1 : name.index("}")]


def test_every_key_derives_from_the_prefix_and_two_prefixes_share_nothing() -> None:
    one, two = _all_names(RedisKeys("one:", 4)), _all_names(RedisKeys("two:", 4))
    assert all(_tag(name).startswith("one:") for name in one)
    assert all(_tag(name).startswith("two:") for name in two)
    assert len(set(one)) == len(one), "each key has its own name"
    assert not set(one) & set(two)


def test_a_shards_keys_share_its_tag_and_control_keys_share_one_of_their_own() -> None:
    """Every script and transaction stays inside one slot of a Redis Cluster."""
    keys = RedisKeys("p:", 4)
    tags = [{_tag(name) for name in _shard_names(shard)} for shard in keys.all_shards]
    assert [len(tag) for tag in tags] == [1, 1, 1, 1]
    assert [tag.pop().partition(".")[0] for tag in tags] == ["p:s0", "p:s1", "p:s2", "p:s3"]
    assert {_tag(name) for name in _control_names(keys)} == {"p:c"}


@pytest.mark.parametrize("prefix", ["hitstream:", "test:", "x"])
def test_shards_spread_evenly_over_masters_that_split_the_slots_evenly(prefix: str) -> None:
    """16 shards over 3 masters: 5 or 6 each (plain `s<k>` tags gave 3, 8 and 5)."""
    for masters, shards in ((3, 16), (2, 8), (4, 32)):
        keys = RedisKeys(prefix, shards)
        owner = Counter(key_slot(s.stream.encode()) * masters // SLOTS for s in keys.all_shards)
        assert sorted(owner) == list(range(masters))
        assert max(owner.values()) - min(owner.values()) <= 1, owner


def test_the_legacy_shard_keeps_the_names_of_releases_before_shards() -> None:
    legacy = RedisKeys("hitstream:", 8).legacy
    assert _shard_names(legacy) == [
        "hitstream:events",
        "hitstream:events:dead",
        "hitstream:plans:g",
        "hitstream:dedup:site:1",
        "hitstream:visit:site:1",
        "hitstream:vno:site:20454",  # no release before shards had it: named like the rest
        "hitstream:call:ab12",
    ]


def test_a_site_keeps_its_shard_and_growing_the_count_moves_few_sites() -> None:
    sites = [f"site-{i}" for i in range(4000)]
    assert {shard_of(site, 1) for site in sites} == {0}
    spread = [shard_of(site, 8) for site in sites]
    assert set(spread) == set(range(8))
    assert max(spread.count(k) for k in range(8)) < 1.25 * len(sites) / 8
    moved = sum(shard_of(site, 8) != shard_of(site, 9) for site in sites)
    assert moved < 1.3 * len(sites) / 9, "a jump hash moves about 1/9 of the sites"
    assert all(shard_of(site, 9) == 8 for site in sites if shard_of(site, 8) != shard_of(site, 9))


def test_the_scan_looks_for_every_key_kind() -> None:
    """Each kind keys.py makes (visit, session, salt, queue-sample, the shard and control
    keys...) is a word of the scan below, and each is one the other tests here check."""
    keys = RedisKeys("p:", 2)
    checked = {_key_word(name, "p:") for name in _all_names(keys) + _shard_names(keys.legacy)}
    assert set(KEY_WORDS) == checked
    assert {"visit", "session", "salt", "queue-sample", "shard-counts", "events"} <= checked
    for name in _every_member_name(keys):
        assert KEY_NAME.search(name), name


def _strings(path: Path) -> list[str]:
    """The string literals of a Python or Lua file."""
    text = path.read_text()
    if path.suffix == ".py":
        return [
            node.value
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        ]
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    return [m.group(2) for m in re.finditer(r"(['\"])(.*?)\1", code)]


def test_no_module_but_keys_spells_a_key_name() -> None:
    """Key names are not built anywhere else: no string literal of any package's Python
    or Lua outside keys.py looks like `<something>:<key word>`."""
    assert CODE and OWNER.exists()
    offenders = []
    for package in CODE:
        for path in [*package.rglob("*.py"), *package.rglob("*.lua")]:
            if path == OWNER:
                continue
            for text in _strings(path):
                if KEY_NAME.search(text):
                    offenders.append(f"{path.relative_to(ROOT)}: {text[:40]!r}")
    assert not offenders

"""The rate limiter's admission script (ingest/lua/gated_buckets.lua, after the registry's
rules) run directly on a real Valkey: who is verified, which buckets are checked and
which charged in each mode, and the verdict it returns."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from ingest.ratelimit import GATED_BUCKETS
from sites.model import ApiKey, Site, to_json

KEY = ApiKey("0123456789ab", "s", "proof", datetime(2026, 1, 1, tzinfo=UTC))


class Gate:
    """GATED_BUCKETS over keys of this test's own prefix."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self.prefix = f"test:buckets:{uuid.uuid4().hex}:"
        self.script = conn.register_script(GATED_BUCKETS)
        self.keys = self.prefix + "keys"
        conn.hset(self.keys, KEY.key_id, to_json(KEY))
        conn.hset(
            self.keys,
            "revoked0000a",
            to_json(ApiKey("revoked0000a", "s", "proof", KEY.created_at, revoked=True)),
        )

    def __call__(
        self, check: tuple[str, str, str, str], *buckets: tuple[str, float, int, int]
    ) -> list[Any]:
        """One request alone."""
        return self.together([(check, buckets)])[0]

    def together(
        self, requests: list[tuple[tuple[str, str, str, str], tuple[Any, ...]]]
    ) -> list[list[Any]]:
        """Several requests in one call, as a group commit sends them."""
        counts: list[int] = []
        keys: list[str] = []
        args: list[Any] = []
        for (kind, where, field, proof), buckets in requests:
            own = [kind, field, proof]
            for _, rate, burst, mode in buckets:
                own += [rate, burst, mode]
            names = [where or self.prefix + "none", *(self.prefix + b[0] for b in buckets)]
            counts += [len(names), len(own)]
            keys += names
            args += own
        return [list(r) for r in self.script(keys=keys, args=[len(requests), *counts, *args])]

    def tokens(self, name: str) -> float | None:
        level = self.conn.hget(self.prefix + name, "tokens")
        return None if level is None else float(level)


@pytest.fixture
def gate(redis_conn: redis.Redis) -> Iterator[Gate]:
    yield Gate(redis_conn)


NONE = ("", "", "", "")


def test_a_bucket_refuses_once_empty_and_names_itself(gate: Gate) -> None:
    """The reply: verified, allowed, retry ms, remaining, the limiting bucket (1-based),
    the record looked up, genuine."""
    ip = ("ip", 1.0, 2, 0)
    assert gate(NONE, ip) == [1, 1, 0, 1, 1, None, 1]
    assert gate(NONE, ("other", 100.0, 5, 0), ip)[:5] == [1, 1, 0, 0, 1]
    verified, allowed, retry_ms, remaining, limiting, _, _ = gate(NONE, ("other", 100.0, 5, 0), ip)
    assert (verified, allowed, remaining, limiting) == (1, 0, 0, 2)
    assert 0 < retry_ms <= 1000
    assert gate.tokens("other") == pytest.approx(4), "a refusal takes nothing"


def test_a_valid_key_is_verified_and_its_record_returned(gate: Gate) -> None:
    reply = gate(("key", gate.keys, KEY.key_id, "proof"), ("ip", 10.0, 10, 0))
    assert reply[0] == 1 and reply[6] == 1
    assert reply[5] == to_json(KEY)


@pytest.mark.parametrize(
    ("field", "proof", "verified", "genuine"),
    [
        (KEY.key_id, "guess", 0, 0),
        ("revoked0000a", "proof", 0, 1),  # a revoked key's holder is no guesser
        ("unknown00000", "proof", 0, 0),
    ],
)
def test_a_key_that_fails(gate: Gate, field: str, proof: str, verified: int, genuine: int) -> None:
    reply = gate(("key", gate.keys, field, proof), ("ip", 10.0, 10, 0))
    assert (reply[0], reply[6]) == (verified, genuine)


def test_a_gated_bucket_is_charged_only_once_verified(gate: Gate) -> None:
    own = ("own", 1.0, 5, 1)
    gate(("key", gate.keys, KEY.key_id, "guess"), own)
    assert gate.tokens("own") is None, "a wrong secret cannot drain a victim's bucket"
    gate(("key", gate.keys, KEY.key_id, "proof"), own)
    assert gate.tokens("own") == pytest.approx(4, abs=0.1)


def test_a_failures_bucket_is_charged_on_failed_authentications_only(gate: Gate) -> None:
    """Mode 2 (an admin token's): checked always, so the right secret is refused too
    while the address is over its failures; mode 3 (a key's) only on a failure."""
    strict, keyed = ("strict", 0.001, 1, 2), ("keyed", 0.001, 1, 3)
    assert gate(("given", "", "1", ""), strict, keyed)[1] == 1
    assert gate.tokens("strict") is None and gate.tokens("keyed") is None
    assert gate(("given", "", "0", ""), strict)[1] == 1
    assert gate(("given", "", "1", ""), strict)[:2] == [1, 0], "no oracle for a guesser"
    assert gate(("given", "", "0", ""), keyed)[1] == 1
    assert gate(("key", gate.keys, KEY.key_id, "proof"), keyed)[:2] == [1, 1]
    assert gate(("key", gate.keys, KEY.key_id, "guess"), keyed)[:2] == [0, 0]
    assert gate(("key", gate.keys, "revoked0000a", "proof"), keyed)[:2] == [0, 1]


def test_a_public_site_verifies_its_allowed_origins(gate: Gate) -> None:
    sites = gate.prefix + "sites"
    site = Site("shop", "Shop", public=True, allowed_origins=("https://shop.example",))
    gate.conn.hset(sites, "shop", to_json(site))
    assert gate(("site", sites, "shop", "https://shop.example"))[0] == 1
    assert gate(("site", sites, "shop", "https://evil.example"))[0] == 0
    origins = gate.prefix + "origins"
    gate.conn.sadd(origins, "https://shop.example")
    assert gate(("origin", origins, "https://shop.example", ""))[0] == 1
    assert gate(("origin", origins, "https://evil.example", ""))[0] == 0


def test_requests_in_one_call_are_checked_in_turn_as_if_alone(gate: Gate) -> None:
    one = ("ip:1", 1.0, 1, 0)  # one token: the first request takes it
    other = ("ip:2", 1.0, 5, 0)
    key = ("key", gate.keys, KEY.key_id, "proof")
    replies = gate.together([(NONE, (one,)), (NONE, (one, other)), (key, (other,))])
    assert [r[1] for r in replies] == [1, 0, 1]  # the second finds ip:1 empty
    assert replies[1][4] == 1  # refused by its first bucket
    assert replies[2][0] == 1 and replies[2][5] is not None  # verified, its record
    assert gate.tokens("ip:2") == 4  # taken once: the refused request took nothing

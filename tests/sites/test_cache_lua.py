"""The registry's Lua (sites/lua, loaded by sites/cache.py) run directly on a real Valkey:
the key and site rules, the key check by Redis's clock, the key merge; and Python's side
of each rule (ApiKey.active, KEY_MERGE) agreeing with the Lua's."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis

from foundation.settings import Settings
from hitstream.connections import redis_client
from sites.cache import (
    KEY_RULES,
    MERGE_KEYS,
    MERGE_RULE,
    REDIS_CLOCK,
    SITE_RULES,
    VERIFY_KEY,
    SiteCache,
)
from sites.model import KEY_MERGE, NO_ORIGIN, ApiKey, Site, key_from_json, to_json

MADE = datetime(2026, 1, 1, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _redis_now_ms(conn: redis.Redis) -> int:
    seconds, micros = conn.time()
    return int(seconds) * 1000 + int(micros) // 1000


@pytest.fixture
def hash_key() -> str:
    return f"test:lua:{uuid.uuid4().hex}"


def test_the_redis_clock_is_redis_time_in_milliseconds(redis_conn: redis.Redis) -> None:
    now_ms = redis_conn.register_script(REDIS_CLOCK + "\nreturn now_ms()")
    before = _redis_now_ms(redis_conn)
    read = int(now_ms())
    assert before <= read <= _redis_now_ms(redis_conn)


def test_python_and_lua_agree_on_which_keys_are_valid(redis_conn: redis.Redis) -> None:
    """ApiKey.active (Python, for the admin routes) and key_is_valid (Lua, for requests)
    over the same records and moments: every expiry state, revoked or not, at, before
    and after the expiry to the millisecond."""
    valid = redis_conn.register_script(
        KEY_RULES + "\nreturn key_is_valid(ARGV[1], ARGV[2], tonumber(ARGV[3])) and 1 or 0"
    )
    expiry = MADE + timedelta(days=1)
    moments = [expiry - timedelta(milliseconds=1), expiry, expiry + timedelta(milliseconds=1)]
    checked = 0
    for expires, revoked, read_only, now in itertools.product(
        (None, expiry), (False, True), (False, True), moments
    ):
        key = ApiKey("0123456789ab", "s", "hash", MADE, expires, revoked, read_only)
        lua_says = valid(args=[to_json(key), "hash", _ms(now)]) == 1
        assert lua_says is key.active(now), (key, now)
        assert valid(args=[to_json(key), "other", _ms(now)]) == 0, "a wrong secret never"
        checked += 1
    assert checked == 24


def test_a_key_is_genuine_when_its_secret_matches_whatever_its_state(
    redis_conn: redis.Redis,
) -> None:
    genuine = redis_conn.register_script(
        KEY_RULES + "\nreturn key_is_genuine(ARGV[1], ARGV[2]) and 1 or 0"
    )
    key = ApiKey("0123456789ab", "s", "hash", MADE, MADE, revoked=True)
    assert genuine(args=[to_json(key), "hash"]) == 1
    assert genuine(args=[to_json(key), "guess"]) == 0


def test_a_public_site_admits_its_allowed_origins_only(redis_conn: redis.Redis) -> None:
    admits = redis_conn.register_script(
        SITE_RULES + "\nreturn site_admits(ARGV[1], ARGV[2]) and 1 or 0"
    )
    shop = Site("shop", "Shop", public=True, allowed_origins=("https://a.example", "https://b"))
    assert admits(args=[to_json(shop), "https://b"]) == 1
    assert admits(args=[to_json(shop), "https://evil.example"]) == 0
    assert admits(args=[to_json(replace(shop, public=False)), "https://b"]) == 0


def test_no_origin_is_admitted_by_a_public_site_that_accepts_server_events_only(
    redis_conn: redis.Redis,
) -> None:
    admits = redis_conn.register_script(
        SITE_RULES + "\nreturn site_admits(ARGV[1], ARGV[2]) and 1 or 0"
    )
    shop = Site("shop", "Shop", public=True, allowed_origins=("https://a.example",))
    server = replace(shop, accept_server_events=True)
    assert admits(args=[to_json(shop), NO_ORIGIN]) == 0
    assert admits(args=[to_json(server), NO_ORIGIN]) == 1
    assert admits(args=[to_json(replace(server, public=False)), NO_ORIGIN]) == 0
    assert admits(args=[to_json(server), "https://evil.example"]) == 0  # browsers: unchanged
    cached_before = orjson.loads(to_json(shop))
    del cached_before["accept_server_events"]  # a record cached before migration 0016
    assert admits(args=[orjson.dumps(cached_before), NO_ORIGIN]) == 0


def test_verify_key_answers_by_redis_clock(redis_conn: redis.Redis, hash_key: str) -> None:
    """The record of a valid key; 1 for a genuine one revoked or expired (by Redis's
    clock: a key that expired a moment ago on Redis's clock is expired); nothing for a
    guess or an unknown id."""
    verify = redis_conn.register_script(VERIFY_KEY)
    now = datetime.fromtimestamp(_redis_now_ms(redis_conn) / 1000, UTC)
    fresh = ApiKey("00000000000a", "s", "hash", MADE)
    records = {
        fresh.key_id: fresh,
        "00000000000b": replace(fresh, key_id="00000000000b", revoked=True),
        "00000000000c": replace(fresh, key_id="00000000000c", expires_at=now),
        "00000000000d": replace(fresh, key_id="00000000000d", expires_at=now + timedelta(hours=1)),
    }
    redis_conn.hset(hash_key, mapping={k: to_json(r) for k, r in records.items()})
    assert key_from_json(verify(keys=[hash_key], args=["00000000000a", "hash"])) == fresh
    assert verify(keys=[hash_key], args=["00000000000b", "hash"]) == 1
    assert verify(keys=[hash_key], args=["00000000000c", "hash"]) == 1
    found = verify(keys=[hash_key], args=["00000000000d", "hash"])
    assert key_from_json(found).key_id == "00000000000d"
    assert verify(keys=[hash_key], args=["00000000000a", "guess"]) is None
    assert verify(keys=[hash_key], args=["0000000000ff", "hash"]) is None


def _merge(conn: redis.Redis, hash_key: str, *records: bytes, key_id: str = "k") -> ApiKey:
    merge = conn.register_script(MERGE_KEYS)
    for record in records:
        assert merge(keys=[hash_key], args=[MERGE_RULE, key_id, record]) == 1
    return key_from_json(conn.hget(hash_key, key_id) or b"")


def test_merge_keys_applies_key_merge(redis_conn: redis.Redis, hash_key: str) -> None:
    """Revocation and read-only are for good; a time only moves earlier (none set: none)."""
    base = ApiKey("k", "s", "hash", MADE + timedelta(days=1))
    marked = replace(
        base, created_at=MADE, expires_at=MADE + timedelta(days=2), revoked=True, read_only=True
    )
    assert _merge(redis_conn, hash_key, to_json(marked), to_json(base)) == marked
    later = replace(base, expires_at=MADE + timedelta(days=3))
    assert _merge(redis_conn, hash_key, to_json(later)) == marked
    unset = f"{hash_key}:unset"
    assert _merge(redis_conn, unset, to_json(base), to_json(base)).expires_at is None
    assert set(KEY_MERGE) <= set(orjson.loads(to_json(base))), "the rule names real fields"


def test_a_read_only_mark_survives_a_record_cached_before_it_existed(
    redis_conn: redis.Redis, hash_key: str
) -> None:
    """A record cached before migration 0014 has no read_only field: merged with a share
    token's record in either order, the key is read-only."""
    share = ApiKey("k", "s", "hash", MADE, read_only=True)
    legacy = orjson.loads(to_json(share))
    del legacy["read_only"]
    old = orjson.dumps(legacy)
    assert _merge(redis_conn, hash_key, old, to_json(share)).read_only
    assert _merge(redis_conn, f"{hash_key}:2", to_json(share), old).read_only


def test_merge_keys_refuses_a_rule_it_does_not_know(redis_conn: redis.Redis, hash_key: str) -> None:
    merge = redis_conn.register_script(MERGE_KEYS)
    record = to_json(ApiKey("k", "s", "hash", MADE))
    merge(keys=[hash_key], args=[MERGE_RULE, "k", record])
    with pytest.raises(redis.ResponseError, match="unknown merge rule"):
        merge(keys=[hash_key], args=[orjson.dumps({"revoked": "latest"}), "k", record])


@pytest.mark.anyio
async def test_a_share_token_keeps_read_only_through_a_cache_rebuild(
    make_settings: Callable[..., Settings],
) -> None:
    """A rebuild from ClickHouse whose copy lacks the mark (read before the share was
    written, or written by a build from before share tokens) leaves the token read-only:
    a key once read-only stays read-only, as ClickHouse's max(read_only) says."""
    settings = make_settings()
    share = ApiKey("0123456789ab", "s", "hash", MADE, read_only=True)
    conn = redis_client(settings.redis_url or "")
    try:
        cache = SiteCache(conn, settings.keys)
        await cache.put(keys=[share])
        await cache.replace_all([], [replace(share, read_only=False)])
        assert await cache.loaded()
        cached = key_from_json(await conn.hget(settings.keys.api_keys, share.key_id) or b"")
    finally:
        await conn.aclose()
    assert cached.read_only and cached == share

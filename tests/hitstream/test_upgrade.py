"""A single-server deployment upgraded from a release before shards keeps its day's
salt and its dashboard sessions (their keys are renamed at start), and its stream is
drained where it is (tests/consumers/test_shards.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from ingest.visitors import day_name, utc_day


def test_salts_and_sessions_of_a_release_before_shards_keep_their_values_and_ttls(
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    redis_conn: redis.Redis,
) -> None:
    settings = make_settings()
    keys = settings.keys
    today = day_name(utc_day(time.time()))
    old_salt, old_session = (
        f"{settings.redis_prefix}salt:{today}",
        f"{settings.redis_prefix}session:ab12",
    )
    redis_conn.set(old_salt, b"s" * 32, ex=3600)
    redis_conn.set(old_session, b"fingerprint", ex=600)
    # A key another process already made under the new name wins over the old one.
    old_yesterday = f"{settings.redis_prefix}salt:1999-01-01"
    redis_conn.set(old_yesterday, b"old")
    redis_conn.set(keys.salt("1999-01-01"), b"new")

    make_client(settings, frozenset({Role.INGEST}))
    assert redis_conn.get(keys.salt(today)) == b"s" * 32
    assert 3500 < redis_conn.ttl(keys.salt(today)) <= 3600
    assert redis_conn.get(keys.session("ab12")) == b"fingerprint"
    assert not redis_conn.exists(old_salt, old_session)
    assert redis_conn.get(keys.salt("1999-01-01")) == b"new"

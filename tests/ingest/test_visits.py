"""Visits are told at ingest, in the script that appends each event (ingest/lua/visits.lua):
a visitor's events with no gap of 30 minutes or more are one visit, across replicas."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
import redis
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from schemas.entry import ROW_FIELD
from tests.helpers import D0, event

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
START = datetime.fromisoformat(f"{D0}T10:00:00+00:00")


@pytest.fixture
def ingest(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, frozenset({Role.INGEST}))


def at(minutes: float, **fields: Any) -> dict[str, Any]:
    moment = START + timedelta(minutes=minutes)
    return event("s", "/", timestamp=moment.isoformat().replace("+00:00", "Z"), **fields)


def send(client: TestClient, *bodies: dict[str, Any], agent: str = CHROME) -> None:
    for body in bodies:
        response = client.post("/event", json=body, headers={"user-agent": agent})
        assert response.status_code == 202, response.text


def visits(conn: redis.Redis, settings: Settings) -> list[tuple[int, int]]:
    """(minutes after START, visit id as minutes after START) of each stored event."""
    out = []
    for _, fields in conn.xrange(settings.keys.shard(0).stream):
        row = orjson.loads(fields[ROW_FIELD])
        moment = datetime.fromisoformat(row["ts"] + "+00:00")
        ms = int(START.timestamp() * 1000)
        visit = (row["session_id"] - ms) / 60_000 if row["session_id"] else None
        out.append((int((moment - START) / timedelta(minutes=1)), visit))
    return out


def test_a_gap_of_30_minutes_starts_a_new_visit(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    send(ingest, at(0), at(10), at(39.9), at(70), at(100))
    # 39.9 is 29.9 minutes after 10: same visit; 70 is 30.1 after 39.9: a new one;
    # 100 is exactly 30 after 70: a new one too (a gap of 30 minutes or more).
    assert visits(redis_conn, settings) == [(0, 0), (10, 0), (39, 0), (70, 70), (100, 100)]


def test_late_events_join_their_visit_and_old_ones_get_their_own(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    send(ingest, at(60), at(50), at(5), at(65))
    # 50 is before the visit's first event but within 30 minutes of it: it joins; 5 is
    # long before (an import): a visit of its own, and the current visit goes on at 65.
    assert visits(redis_conn, settings) == [(60, 60), (50, 60), (5, 5), (65, 60)]


def test_visitors_sites_and_engagement_events(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    send(ingest, at(0))
    send(ingest, at(1), agent=FIREFOX)  # another visitor
    send(ingest, at(2, event_type="engagement"))
    send(ingest, {**at(3), "site_id": "other"})
    assert visits(redis_conn, settings) == [(0, 0), (1, 1), (2, None), (3, 3)]


def test_one_visit_across_ingest_processes_and_batches(
    make_client: Callable[..., TestClient],
    settings: Settings,
    redis_conn: redis.Redis,
) -> None:
    first = make_client(settings, frozenset({Role.INGEST}))
    second = make_client(settings, frozenset({Role.INGEST}))
    send(first, at(0))
    send(second, at(20))
    batch = [at(25, event_id="6f0f8f8e-8d8b-4f60-9d5e-0a4f4e0c1a11"), at(26)]
    assert second.post("/events", json=batch, headers={"user-agent": CHROME}).status_code == 202
    # The same client event ID again is acknowledged and neither stored nor counted.
    assert first.post("/events", json=batch[:1], headers={"user-agent": CHROME}).status_code == 202
    assert visits(redis_conn, settings) == [(0, 0), (20, 0), (25, 0), (26, 0)]


def test_the_visit_state_holds_no_address_and_expires(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    send(ingest, at(0))
    keys = redis_conn.keys(settings.keys.shard(0).visits + "*")
    assert len(keys) == 1
    value = redis_conn.get(keys[0])
    assert value is not None and b"testclient" not in keys[0] + value
    assert 0 < redis_conn.pttl(keys[0]) <= 60 * 60 * 1000

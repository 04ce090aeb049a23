"""visit:channel (schemas/channels.py's rules over stored visits) and the entry and exit
pages' hostnames, as dimensions and filters, on rows written straight into ClickHouse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from tests.helpers import D0, DAY0, at, event, poll_stats, rows, write

RANGE = [DAY0.isoformat(), DAY0.isoformat()]


@pytest.fixture
def report(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, frozenset({Role.REPORT}))


def seed(ch: Client) -> None:
    """Seven visits of six visitors:
    v1 10:00 Google ad click (gclid) on example.com/, 10:05 shop.example.com/cart -> Paid Search
    v2 10:00 Google, no click id                                      -> Organic Search
    v2 14:00 direct                                                   -> Direct
    v3 10:00 Reddit on blog.example.com, 10:01 a custom event          -> Organic Social
    v4 10:00 utm_medium=email, utm_source=weekly                      -> Email
    v5 10:00 Wikipedia                                                -> Referral
    v6 10:00 utm_medium=cpc, no source                                -> Paid Other
    """
    write(
        ch,
        "c",
        {"v": 1, "ts": at(DAY0, "10:00:00"), "source": "Google", "click": "gclid"},
        {"v": 1, "ts": at(DAY0, "10:05:00"), "visit": at(DAY0, "10:00:00"),
         "hostname": "shop.example.com", "path": "/cart"},
        {"v": 2, "ts": at(DAY0, "10:00:00"), "source": "Google"},
        {"v": 2, "ts": at(DAY0, "14:00:00")},
        {"v": 3, "ts": at(DAY0, "10:00:00"), "source": "Reddit", "hostname": "blog.example.com"},
        {"v": 3, "ts": at(DAY0, "10:01:00"), "visit": at(DAY0, "10:00:00"), "type": "Signup",
         "hostname": "blog.example.com"},
        {"v": 4, "ts": at(DAY0, "10:00:00"), "source": "weekly",
         "utm": {"utm_medium": "email", "utm_source": "weekly"}},
        {"v": 5, "ts": at(DAY0, "10:00:00"), "source": "Wikipedia"},
        {"v": 6, "ts": at(DAY0, "10:00:00"), "utm": {"utm_medium": "cpc"}},
    )  # fmt: skip


def query(client: TestClient, **body: Any) -> dict[str, Any]:
    body = {"site_id": "c", "date_range": RANGE, **body}
    response = client.post("/api/v2/query", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_visits_by_channel(report: TestClient, ch: Client) -> None:
    seed(ch)
    answer = query(report, metrics=["visits", "visitors"], dimensions=["visit:channel"],
                   order_by=[["visit:channel", "asc"]])  # fmt: skip
    assert rows(answer) == [
        (["Direct"], [1, 1]),
        (["Email"], [1, 1]),
        (["Organic Search"], [1, 1]),
        (["Organic Social"], [1, 1]),
        (["Paid Other"], [1, 1]),
        (["Paid Search"], [1, 1]),
        (["Referral"], [1, 1]),
    ]


def test_channel_filters_and_event_rows(report: TestClient, ch: Client) -> None:
    seed(ch)
    search = [["is", "visit:channel", ["Organic Search", "Paid Search"]]]
    assert rows(query(report, metrics=["visitors", "visits", "pageviews"], filters=search)) == [
        ([], [2, 2, 3])
    ]
    paid = [["contains", "visit:channel", ["paid"], {"case_sensitive": False}]]
    assert rows(query(report, metrics=["visits"], filters=paid)) == [([], [2])]
    not_direct = [["is_not", "visit:channel", ["Direct"]]]
    assert rows(query(report, metrics=["visits"], filters=not_direct)) == [([], [6])]
    # Event rows grouped by their visit's channel.
    events = query(report, metrics=["events"], dimensions=["visit:channel", "event:name"],
                   filters=[["is", "visit:channel", ["Organic Social", "Paid Search"]]],
                   order_by=[["visit:channel", "asc"], ["event:name", "asc"]])  # fmt: skip
    assert rows(events) == [
        (["Organic Social", "Signup"], [1]),
        (["Organic Social", "pageview"], [1]),
        (["Paid Search", "pageview"], [2]),
    ]


def test_entry_and_exit_page_hostnames(report: TestClient, ch: Client) -> None:
    seed(ch)
    entry = query(report, metrics=["visits"], dimensions=["visit:entry_page_hostname"])
    assert rows(entry) == [(["example.com"], [6]), (["blog.example.com"], [1])]
    exits = query(report, metrics=["visits"], dimensions=["visit:exit_page_hostname"])
    assert rows(exits) == [
        (["example.com"], [5]),
        (["blog.example.com"], [1]),
        (["shop.example.com"], [1]),
    ]
    left_shop = [["is", "visit:exit_page_hostname", ["shop.example.com"]]]
    answer = query(report, metrics=["visits"], dimensions=["visit:channel"], filters=left_shop)
    assert rows(answer) == [(["Paid Search"], [1])]
    blog = [["matches", "visit:entry_page_hostname", ["^blog\\."]]]
    assert rows(query(report, metrics=["visitors"], filters=blog)) == [([], [1])]


def test_an_ad_click_through_ingest_is_paid_search(
    make_client: Callable[..., TestClient], ch: Client
) -> None:
    """The landing URL's gclid is stored by name (migration 0020) and read by the rules."""
    client = make_client()
    google = "https://www.google.com/"
    for visitor, query_string in (("a", "?gclid=Cj0KCQ"), ("b", "")):
        body = event("ads", "/", url=f"https://shop.example/{query_string}", referrer=google,
                     user_id=visitor, timestamp=f"{D0}T07:00:00Z")  # fmt: skip
        assert client.post("/event", json=body).status_code == 202
    poll_stats(client, lambda b: b["total_views"] == 2, site_id="ads", date=D0)
    response = client.post("/api/v2/query", json={
        "site_id": "ads", "metrics": ["visits"], "date_range": [D0, D0],
        "dimensions": ["visit:channel", "visit:entry_page_hostname"],
        "order_by": [["visit:channel", "asc"]],
    })  # fmt: skip
    assert response.status_code == 200, response.text
    assert rows(response.json()) == [
        (["Organic Search", "shop.example"], [1]),
        (["Paid Search", "shop.example"], [1]),
    ]
    assert "Cj0KCQ" not in str(ch.query("SELECT * FROM events").result_rows)

"""The stats query over the whole pipeline: events in through ingest (which tells their
visits), out through the consumer and the views, answered by POST /api/v2/query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import D0, event, wait_for

pytestmark = pytest.mark.e2e

AGENT = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}


def ask(client: TestClient, **body: Any) -> list[Any]:
    response = client.post("/api/v2/query", json={"site_id": "p", **body})
    assert response.status_code == 200, response.text
    return [(r["dimensions"], r["metrics"]) for r in response.json()["results"]]


def test_visits_told_at_ingest_answer_bounce_rate_and_duration(client: TestClient) -> None:
    at = [f"{D0}T10:00:00Z", f"{D0}T10:05:00Z", f"{D0}T11:00:00Z"]
    for moment, path in zip(at, ["/", "/pricing", "/blog"], strict=True):
        body = event("p", path, event_type="pageview", timestamp=moment)
        assert client.post("/event", json=body, headers=AGENT).status_code == 202
    metrics = ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]

    def answered() -> list[Any] | None:
        rows = ask(client, date_range=[D0, D0], metrics=metrics)
        return rows if rows[0][1][2] == 3 else None

    # One visitor, two visits (a gap of 55 minutes): one of 5 minutes, one bounce.
    assert wait_for(answered, what="three page views") == [([], [1, 2, 3, 50.0, 150])]
    entries = ask(client, date_range=[D0, D0], metrics=["visits"], dimensions=["visit:entry_page"])
    assert entries == [(["/"], [1]), (["/blog"], [1])]


def test_realtime_counts_what_just_arrived(client: TestClient) -> None:
    now = datetime.now(UTC)
    for seconds in (0, 1):
        moment = (now - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
        body = event("p", "/live", event_type="pageview", timestamp=moment)
        assert client.post("/event", json=body, headers=AGENT).status_code == 202

    def live() -> list[Any] | None:
        rows = ask(client, date_range="realtime", metrics=["visitors", "pageviews"])
        return rows if rows[0][1][1] == 2 else None

    assert wait_for(live, what="two page views in realtime") == [([], [1, 2])]

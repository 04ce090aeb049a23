"""The request examples of Plausible's Stats API v2 reference, sent as written: those
hitstream answers come back in Plausible's shape; the others are a 400 naming what
hitstream does not have (behavioral filters, segments)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role

SITE = "dummy.site"
ANSWERED: dict[str, dict[str, Any]] = {
    "aggregate": {"metrics": ["visitors", "events"], "date_range": "7d"},
    "country-and-city": {
        "metrics": ["visitors", "pageviews", "bounce_rate"], "date_range": "7d",
        "filters": [["is_not", "visit:country_name", [""]]],
        "dimensions": ["visit:country_name", "visit:city_name"],
    },
    "custom-date-range": {"metrics": ["visitors"], "date_range": ["2024-08-01", "2024-08-15"]},
    "custom-properties": {
        "metrics": ["visitors"], "date_range": "7d",
        "dimensions": ["time:day", "event:props:is_customer"],
        "order_by": [["time:day", "asc"], ["event:props:is_customer", "desc"]],
    },
    "filtering-basics": {
        "metrics": ["visitors"], "date_range": "7d",
        "filters": [["contains", "event:page", ["/docs", "/pricing"]],
                    ["or", [["not", ["is", "visit:utm_campaign", ["Referral"]]],
                            ["is", "visit:country_name",
                             ["Estonia", "United States of America"]]]]],
    },
    "filtering-case-insensitive": {
        "metrics": ["visitors"], "date_range": "7d",
        "filters": [["contains", "event:page", ["blog"], {"case_sensitive": False}]],
    },
    "imports": {
        "metrics": ["visitors"], "date_range": "all", "dimensions": ["visit:source"],
        "include": {"imports": True},
    },
    "pagination": {
        "metrics": ["visitors", "events", "pageviews"], "date_range": "7d",
        "dimensions": ["visit:utm_medium", "visit:utm_source"],
        "include": {"total_rows": True}, "pagination": {"limit": 3, "offset": 1},
    },
    "revenue-metrics": {  # no revenue goal here: a warning (tests/reporting/test_revenue.py)
        "metrics": ["total_revenue"], "date_range": "all", "dimensions": ["event:goal"],
    },
    "time-labels": {
        "metrics": ["visitors"], "date_range": "day", "dimensions": ["time:hour"],
        "include": {"time_labels": True},
    },
    "timeseries": {
        "metrics": ["visitors", "events"], "date_range": "7d",
        "filters": [["is", "visit:os", ["GNU/Linux", "Mac"]]], "dimensions": ["time:day"],
    },
    "utm": {
        "metrics": ["visitors", "events", "pageviews"], "date_range": "7d",
        "dimensions": ["visit:utm_medium", "visit:utm_source"],
    },
}  # fmt: skip
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "behavioral-filters": (
        {"metrics": ["visitors"], "date_range": "all",
         "filters": [["is", "event:goal", ["Signup"]],
                     ["has_done", ["is", "event:page", ["/pricing"]]]]},
        "filters[1][0]",
    ),
    "filtering-by-segment": (
        {"metrics": ["visitors", "events"], "filters": [["is", "segment", [2]]],
         "date_range": "7d"},
        "filters[0][1]",
    ),
}  # fmt: skip


@pytest.fixture
def report(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, frozenset({Role.REPORT}))


@pytest.mark.parametrize("name", sorted(ANSWERED))
def test_examples_hitstream_answers(report: TestClient, name: str) -> None:
    body = {"site_id": SITE, **ANSWERED[name]}
    response = report.post("/api/v2/query", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"results", "meta", "query"}
    for row in answer["results"]:
        assert len(row["metrics"]) == len(body["metrics"])
        assert len(row["dimensions"]) == len(body.get("dimensions", []))
    query = answer["query"]
    assert query["site_id"] == SITE and query["metrics"] == body["metrics"]
    assert len(query["date_range"]) == 2 and query["order_by"]
    if body.get("include", {}).get("total_rows"):
        assert answer["meta"]["total_rows"] == 0
    if body.get("include", {}).get("time_labels"):
        assert len(answer["meta"]["time_labels"]) in (23, 24, 25)
    if body.get("include", {}).get("imports"):
        assert answer["meta"]["imports_included"] is False


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_examples_of_what_hitstream_lacks_are_refused_by_name(
    report: TestClient, name: str
) -> None:
    body, field = REFUSED[name]
    response = report.post("/api/v2/query", json={"site_id": SITE, **body})
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"] == field

"""POST /api/v2/query against hand-computed answers on small fixed data sets, written
straight into ClickHouse (visits are computed at query time, reporting/sources.py); the
main one is tests/helpers.py seed_visits."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from reporting import answer
from reporting.daily import VISIT_VALUES
from reporting.parse import parse
from schemas.migrate import load_migrations
from schemas.query import QueryBody
from tests.helpers import DAY0, DAY1, at, rows, seed_visits, write

NOW = datetime.now(UTC)
DAY2 = DAY0 + timedelta(days=2)
RANGE = [DAY0.isoformat(), DAY1.isoformat()]


@pytest.fixture
def report(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, frozenset({Role.REPORT}))


def query(client: TestClient, **body: Any) -> dict[str, Any]:
    body.setdefault("site_id", "q")
    body.setdefault("date_range", RANGE)
    response = client.post("/api/v2/query", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


HEADLINE = ["visitors", "visits", "pageviews", "events", "users", "bounce_rate",
            "visit_duration", "views_per_visit"]  # fmt: skip


def test_aggregate_of_every_metric(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    answer = query(report, metrics=HEADLINE)
    # bounce: 2 of 4 visits; duration (1200 + 0 + 0 + 3597) / 4; views 7 / 4 visits.
    assert rows(answer) == [([], [3, 4, 7, 8, 1, 50.0, 1199, 1.75])]
    assert answer["query"]["date_range"] == [
        f"{DAY0.isoformat()}T00:00:00+00:00",
        f"{DAY1.isoformat()}T23:59:59+00:00",
    ]
    assert answer["query"]["time_zone"] == "UTC"
    assert answer["meta"] == {}


def test_source_breakdown_with_visit_metrics(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    answer = query(
        report, metrics=["visitors", "visits", "bounce_rate"], dimensions=["visit:source"]
    )
    assert rows(answer) == [
        (["Direct / None"], [1, 1, 100.0]),
        (["GitHub"], [1, 1, 0.0]),
        (["Google"], [1, 1, 0.0]),
        (["X (Twitter)"], [1, 1, 100.0]),
    ]


def test_page_breakdown_counts_events_where_they_happened(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    answer = query(
        report,
        metrics=["visitors", "pageviews", "events", "percentage"],
        dimensions=["event:page"],
        order_by=[["events", "desc"], ["event:page", "asc"]],
    )
    assert rows(answer) == [
        (["/pricing"], [2, 2, 3, 66.67]),
        (["/"], [2, 2, 2, 66.67]),
        (["/blog"], [1, 1, 1, 33.33]),
        (["/docs"], [1, 1, 1, 33.33]),
        (["/docs/api"], [1, 1, 1, 33.33]),
    ]


def test_percentage_is_a_share_of_the_visitors_it_counts(report: TestClient, ch: Client) -> None:
    """Events without a visitor (visitor 0: sent with no address, or imported) are in
    no visitor count, so neither in a percentage's part nor in its whole."""
    write(
        ch,
        "p",
        {"v": 1, "ts": at(DAY0, "10:00:00"), "path": "/a"},
        {"v": 2, "ts": at(DAY0, "10:00:00"), "path": "/b"},
        {"v": 0, "ts": at(DAY0, "11:00:00"), "path": "/b"},
        {"v": 0, "ts": at(DAY0, "11:00:01"), "path": "/c"},
    )
    answer = query(
        report, site_id="p", metrics=["visitors", "pageviews", "percentage"],
        dimensions=["event:page"],
    )  # fmt: skip
    assert rows(answer) == [
        (["/a"], [1, 1, 50.0]),
        (["/b"], [1, 2, 50.0]),
        (["/c"], [0, 1, 0.0]),
    ]


def test_event_filter_keeps_the_visits_that_match(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    answer = query(
        report,
        metrics=["visitors", "visits", "pageviews", "bounce_rate"],
        filters=[["is", "event:page", ["/pricing"]]],
    )
    # v1's first visit (2 views) and v2's (1 view) saw /pricing: 2 page views of it.
    assert rows(answer) == [([], [2, 2, 2, 50.0])]


def test_visit_filter_and_entry_pages(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    answer = query(
        report,
        metrics=["visitors", "visits"],
        dimensions=["visit:entry_page"],
        filters=[["is", "visit:country", ["DE"]]],
    )
    assert rows(answer) == [(["/"], [2, 2]), (["/blog"], [1, 1])]
    exits = query(report, metrics=["visits"], dimensions=["visit:exit_page"])
    assert rows(exits) == [(["/pricing"], [2]), (["/blog"], [1]), (["/docs/api"], [1])]


def test_country_names_as_plausible_shows_them(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    answer = query(report, metrics=["visits"], dimensions=["visit:country_name"])
    assert rows(answer) == [(["Germany"], [3]), (["United States"], [1])]
    germany = query(report, metrics=["visits"], filters=[["is", "visit:country_name", ["Germany"]]])
    assert rows(germany) == [([], [3])]


def test_daily_time_series(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    answer = query(report, metrics=["visitors", "visits", "pageviews"], dimensions=["time:day"])
    assert rows(answer) == [([DAY0.isoformat()], [2, 3, 4]), ([DAY1.isoformat()], [1, 1, 3])]
    auto = query(report, metrics=["pageviews"], dimensions=["time"])
    assert rows(auto) == [([DAY0.isoformat()], [4]), ([DAY1.isoformat()], [3])]


def test_a_visit_across_midnight_counts_once_where_it_started(
    report: TestClient, ch: Client
) -> None:
    write(
        ch,
        "m",
        {"v": 9, "ts": at(DAY0, "23:50:00"), "path": "/a"},
        {"visit": at(DAY0, "23:50:00"), "v": 9, "ts": at(DAY1, "00:10:00"), "path": "/b"},
    )
    answer = query(
        report,
        site_id="m",
        metrics=["visitors", "visits", "pageviews", "visit_duration"],
        dimensions=["time:day"],
    )
    assert rows(answer) == [
        ([DAY0.isoformat()], [1, 1, 1, 1200]),
        ([DAY1.isoformat()], [1, 0, 1, 0]),
    ]
    total = query(report, site_id="m", metrics=["visitors", "visits", "bounce_rate"])
    assert rows(total) == [([], [1, 1, 0.0])]


EVENT_METRICS = ["visitors", "pageviews", "events", "users"]


@pytest.mark.parametrize(
    ("dimensions", "metrics", "table"),
    [
        ([], EVENT_METRICS, "daily_totals"),
        (["time:day"], EVENT_METRICS, "daily_totals"),
        (["time:week"], EVENT_METRICS, "daily_totals"),
        (["time:month"], EVENT_METRICS, "daily_totals"),
        (["event:name"], EVENT_METRICS, "daily_totals"),
        (["event:page"], ["visitors", "pageviews", "events"], "daily_pages"),
        # Every visit dimension daily_visits answers.
        *(([name], ["visitors"], "daily_visits") for name in VISIT_VALUES),
    ],
)
def test_daily_aggregates_answer_as_the_raw_events_do(
    report: TestClient, ch: Client, dimensions: list[str], metrics: list[str], table: str
) -> None:
    seed_visits(ch, "q")
    body = {"site_id": "q", "metrics": metrics, "dimensions": dimensions, "date_range": RANGE}
    planned = answer.plan(parse(QueryBody.model_validate(body)), ZoneInfo("UTC"), NOW)
    assert f"FROM {table}" in planned.compiled.sql and not planned.compiled.reads_raw_events
    from_aggregates = query(report, **body)
    # A filter no event fails makes the same question one for the raw events.
    from_events = query(report, **body, filters=[["is_not", "event:page", ["/nowhere"]]])
    assert rows(from_aggregates) == rows(from_events)
    assert len(rows(from_aggregates)) > 1 or rows(from_aggregates)[0][1][0] > 0


def test_a_visit_counts_under_its_first_event_whatever_inserts_follow(
    report: TestClient, ch: Client
) -> None:
    """daily_visits counts a visit from the insert holding its first event: events of
    the same visit inserted later (another page, another source) change none of its
    dimensions, as in `sessions`."""
    write(ch, "w", {"v": 7, "ts": at(DAY0, "10:00:00"), "source": "Google", "path": "/a"})
    write(
        ch,
        "w",
        {"v": 7, "ts": at(DAY0, "10:05:00"), "visit": at(DAY0, "10:00:00"), "path": "/b",
         "source": "Bing"},
        {"v": 7, "ts": at(DAY0, "09:58:00"), "visit": at(DAY0, "10:00:00"), "path": "/c"},
    )  # fmt: skip
    for dimension, expected in (("visit:source", "Google"), ("visit:entry_page", "/a")):
        body = {"site_id": "w", "metrics": ["visitors"], "dimensions": [dimension]}
        daily = query(report, **body, date_range=RANGE)
        from_visits = query(
            report, **body, date_range=RANGE, filters=[["is_not", "event:page", ["/nowhere"]]]
        )
        assert rows(daily) == rows(from_visits) == [([expected], [1])]


def test_filter_operators(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")

    def views(*filters: list[Any]) -> int:
        return int(rows(query(report, metrics=["pageviews"], filters=list(filters)))[0][1][0])

    assert views(["contains", "event:page", ["/docs"]]) == 2
    assert views(["contains_not", "event:page", ["/docs", "/pricing"]]) == 3
    assert views(["matches", "event:page", ["^/docs/.+$"]]) == 1
    assert views(["matches_not", "event:page", ["^/docs"]]) == 5
    assert views(["is_not", "visit:source", ["Direct / None"]]) == 6
    assert views(["is", "visit:source", ["Direct / None"]]) == 1
    # Twitter, the name older Plausible stored, also matches X (Twitter)
    assert views(["is", "visit:source", ["Twitter"]]) == 1
    assert views(["is_not", "visit:source", ["twitter"], {"case_sensitive": False}]) == 6
    assert views(["contains", "event:page", ["PRICING"], {"case_sensitive": False}]) == 2
    assert views(["is", "visit:browser", ["chrome"], {"case_sensitive": False}]) == 6
    assert views(["or", [["is", "visit:country", ["US"]], ["is", "event:page", ["/blog"]]]]) == 2
    assert views(["not", ["is", "visit:country", ["DE"]]]) == 1
    assert (
        views(["and", [["is", "visit:country", ["DE"]], ["contains", "event:page", ["/d"]]]]) == 2
    )


def test_props_dimension_and_filter(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    answer = query(
        report,
        metrics=["events"],
        dimensions=["event:props:plan"],
        filters=[["is", "event:name", ["Signup"]]],
    )
    assert rows(answer) == [(["pro"], [1])]
    everything = query(report, metrics=["events"], dimensions=["event:name"])
    assert rows(everything) == [(["pageview"], [7]), (["Signup"], [1])]


def test_pagination_and_total_rows(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    body = {
        "metrics": ["pageviews"],
        "dimensions": ["event:page"],
        "order_by": [["event:page", "asc"]],
        "include": {"total_rows": True},
    }
    page = query(report, **body, pagination={"limit": 2, "offset": 1})
    assert rows(page) == [(["/blog"], [1]), (["/docs"], [1])]
    assert page["meta"]["total_rows"] == 5
    past = query(report, **body, pagination={"limit": 2, "offset": 10})
    assert past["results"] == [] and past["meta"]["total_rows"] == 5


def test_time_labels_list_every_bucket_and_results_the_ones_with_data(
    report: TestClient, ch: Client
) -> None:
    """As Plausible answers include.time_labels: "If no data falls into a given time
    bucket, no values are returned"; meta.time_labels lists every bucket."""
    seed_visits(ch, "q")
    body = {
        "metrics": ["pageviews"],
        "date_range": [DAY0.isoformat(), DAY2.isoformat()],
        "dimensions": ["time:day"],
    }
    answer = query(report, **body, include={"time_labels": True})
    days = [d.isoformat() for d in (DAY0, DAY1, DAY2)]
    assert answer["meta"]["time_labels"] == days
    assert rows(answer) == [([days[0]], [4]), ([days[1]], [3])]
    assert answer["query"]["include"] == {"time_labels": True}
    hours = query(
        report,
        metrics=["pageviews"],
        date_range=[DAY0.isoformat(), DAY0.isoformat()],
        dimensions=["time:hour"],
        include={"time_labels": True},
    )
    assert len(hours["meta"]["time_labels"]) == 24
    assert rows(hours) == [([at(DAY0, "10:00:00")], [3]), ([at(DAY0, "12:00:00")], [1])]


def test_fill_empty_gives_every_bucket_a_row(report: TestClient, ch: Client) -> None:
    """hitstream's extension: the empty buckets as zeros, with or without time_labels."""
    seed_visits(ch, "q")
    body = {
        "metrics": ["pageviews", "bounce_rate"],
        "date_range": [DAY0.isoformat(), DAY2.isoformat()],
        "dimensions": ["time:day"],
    }
    days = [d.isoformat() for d in (DAY0, DAY1, DAY2)]
    filled = query(report, **body, include={"fill_empty": True})
    # DAY0: 3 visits, 2 bounces (66.67); DAY1: 1 visit, no bounce; DAY2: empty.
    assert rows(filled) == [([days[0]], [4, 66.67]), ([days[1]], [3, 0.0]), ([days[2]], [0, 0.0])]
    assert filled["meta"] == {}
    both = query(report, **body, include={"fill_empty": True, "time_labels": True})
    assert both["meta"]["time_labels"] == days and both["results"] == filled["results"]
    refused = report.post(
        "/api/v2/query",
        json={"site_id": "q", "date_range": RANGE, "metrics": ["pageviews"],
              "dimensions": ["time:day", "event:page"], "include": {"fill_empty": True}},
    )  # fmt: skip
    assert refused.status_code == 400
    assert refused.json()["details"][0]["field"] == "include.fill_empty"


def test_csv_equals_json(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    body = {
        "site_id": "q",
        "date_range": RANGE,
        "metrics": ["visitors", "bounce_rate"],
        "dimensions": ["visit:source"],
    }
    as_json = report.post("/api/v2/query", json=body).json()
    response = report.post("/api/v2/query", json=body, headers={"accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == ["visit:source", "visitors", "bounce_rate"]
    assert table[1:] == [
        [*r["dimensions"], *(str(m) for m in r["metrics"])] for r in as_json["results"]
    ]
    again = report.post("/api/v2/query", json={**body, "format": "csv"})
    assert again.text == response.text


def test_compare_with_the_previous_period(report: TestClient, ch: Client) -> None:
    seed_visits(ch, "q")
    answer = query(
        report,
        metrics=["pageviews"],
        date_range=[DAY1.isoformat(), DAY1.isoformat()],
        include={"compare": "previous_period"},
    )
    # DAY1 has 3 page views; DAY0, the period before, 4.
    assert answer["results"] == [
        {"dimensions": [], "metrics": [3],
         "comparison": {"dimensions": [], "metrics": [4], "change": [-25]}}
    ]  # fmt: skip


def test_comparisons_in_plausibles_shape(report: TestClient, ch: Client) -> None:
    """include.comparisons as Plausible's query parser takes it; each row's comparison
    with the compared row's dimensions, and Plausible's change."""
    seed_visits(ch, "q")
    day_before = (DAY0 - timedelta(days=1)).isoformat()
    day0, day1, day2 = DAY0.isoformat(), DAY1.isoformat(), DAY2.isoformat()
    total = query(
        report,
        metrics=["pageviews"],
        date_range=[day1, day1],
        include={"comparisons": {"mode": "previous_period"}},
    )
    assert total["results"] == [
        {"dimensions": [], "metrics": [3],
         "comparison": {"dimensions": [], "metrics": [4], "change": [-25]}}
    ]  # fmt: skip
    assert total["query"]["include"] == {
        "comparisons": {
            "mode": "previous_period",
            "date_range": [f"{day0}T00:00:00+00:00", f"{day0}T23:59:59+00:00"],
        }
    }
    # A series alone is filled, as Plausible fills it: DAY1 3 views against the day
    # before DAY0 (none: +100 from zero), DAY2 none against DAY0's 4 (-100).
    series = query(
        report,
        metrics=["pageviews"],
        date_range=[day1, day2],
        dimensions=["time:day"],
        include={"comparisons": {"mode": "previous_period"}},
    )
    assert series["results"] == [
        {"dimensions": [day1], "metrics": [3],
         "comparison": {"dimensions": [day_before], "metrics": [0], "change": [100]}},
        {"dimensions": [day2], "metrics": [0],
         "comparison": {"dimensions": [day0], "metrics": [4], "change": [-100]}},
    ]  # fmt: skip
    # custom: DAY1 (1 visit, no bounce, 3 views) against DAY0 (3 visits, 2 bounces);
    # the bounce rate changes in points.
    custom = query(
        report,
        metrics=["pageviews", "bounce_rate"],
        date_range=[day1, day1],
        include={"comparisons": {"mode": "custom", "date_range": [day0, day0]}},
    )
    assert custom["results"][0]["comparison"] == {
        "dimensions": [], "metrics": [4, 66.67], "change": [-25, -66.67]
    }  # fmt: skip
    # Breakdown rows keep their dimensions when the period compared with has none.
    by_source = query(
        report,
        metrics=["visitors"],
        dimensions=["visit:source"],
        include={"comparisons": {"mode": "year_over_year"}},
    )
    assert [r["comparison"] for r in by_source["results"]][:1] == [
        {"dimensions": by_source["results"][0]["dimensions"], "metrics": [0], "change": [100]}
    ]


@pytest.mark.parametrize(
    "comparisons",
    [
        {"mode": "custom"},
        {"mode": "custom", "date_range": ["2024-03-02", "2024-03-01"]},
        {"mode": "previous_period", "date_range": ["2024-03-01", "2024-03-02"]},
        {"mode": "last_week"},
    ],
)
def test_bad_comparisons_are_400(report: TestClient, comparisons: dict[str, Any]) -> None:
    response = report.post(
        "/api/v2/query",
        json={"site_id": "q", "date_range": "7d", "metrics": ["visitors"],
              "include": {"comparisons": comparisons}},
    )  # fmt: skip
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"].startswith("include.comparisons")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metrics": ["visitorz"]}, "metrics[0]"),
        ({"metrics": ["visitors"], "dimensions": ["visit:planet"]}, "dimensions[0]"),
        ({"metrics": ["bounce_rate"], "dimensions": ["event:page"]}, "metrics[0]"),
        ({"metrics": ["percentage"]}, "metrics[0]"),
        ({"metrics": ["visitors"], "date_range": "5001d"}, "date_range"),
        ({"metrics": ["visitors"], "date_range": ["2024-02-30", "2024-03-01"]}, "date_range[0]"),
        ({"metrics": ["visitors"], "date_range": ["2024-03-02", "2024-03-01"]}, "date_range"),
        ({"metrics": ["visitors"], "date_range": ["2024-03-01T00:00:00", "2024-03-02T00:00:00"]},
         "date_range[0]"),
        ({"metrics": ["visitors"], "filters": [["equals", "event:page", ["/"]]]}, "filters[0][0]"),
        ({"metrics": ["visitors"], "filters": [["is", "time", ["x"]]]}, "filters[0][1]"),
        ({"metrics": ["visitors"], "filters": [["matches", "event:page", ["(unclosed"]]]},
         "filters[0][2][0]"),
        ({"metrics": ["visitors"], "filters": [["is", "event:page", "/"]]}, "filters[0][2]"),
        ({"metrics": ["visitors"], "filters": [["or", [["is", "x:y", ["1"]]]]]},
         "filters[0][1][0][1]"),
        ({"metrics": ["visitors"], "order_by": [["pageviews", "desc"]]}, "order_by[0]"),
        ({"metrics": ["visitors"], "include": {"time_labels": True}}, "include.time_labels"),
        ({"metrics": ["visitors"], "dimensions": ["time:minute"], "date_range": "year"},
         "dimensions[0]"),
        ({"metrics": ["visitors"], "pagination": {"limit": 0}}, "pagination.limit"),
        ({"metrics": ["visitors"], "filters": [["is", "event:goal", ["Signup"]]]},
         "filters[0][2][0]"),
        ({"metrics": ["visitors"], "filters": [["is", "visit:country", ["DE", "DEU"]]]},
         "filters[0][2][1]"),
        ({"metrics": ["visitors"], "include": {"fill": True}}, "include.fill"),
    ],
)  # fmt: skip
def test_invalid_queries_name_the_part_at_fault(
    report: TestClient, body: dict[str, Any], field: str
) -> None:
    response = report.post("/api/v2/query", json={"site_id": "q", "date_range": "7d", **body})
    assert response.status_code == 400, response.text
    refused = response.json()
    assert refused["details"][0]["field"] == field
    # Plausible's clients show only `error`: the first reason, in Plausible's words
    # where it has them.
    first = refused["details"][0]
    assert refused["error"] in (f"{field}: {first['message']}", *PLAUSIBLE_WORDS.values())


PLAUSIBLE_WORDS = {
    "include.time_labels": "Invalid include.time_labels: requires a time dimension.",
    "filters[0][2][1]": "Invalid visit:country filter, visit:country needs to be a valid "
    "2-letter country code.",
}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"metrics": ["visitorz"]}, "metrics[0]: unknown metric 'visitorz'"),
        ({"metrics": ["visitors"], "include": {"time_labels": True}},
         PLAUSIBLE_WORDS["include.time_labels"]),
        ({"metrics": ["visitors"], "filters": [["is", "visit:country", ["DE", "DEU"]]]},
         PLAUSIBLE_WORDS["filters[0][2][1]"]),
        ({"metrics": ["visitors"], "filters": [["is", "event:props:n", [42]]]},
         """Invalid filter '["is", "event:props:n", [42]]'."""),
        ({"metrics": []}, "metrics: List should have at least 1 item after validation, not 0"),
    ],
)  # fmt: skip
def test_the_error_is_the_first_reason(
    report: TestClient, body: dict[str, Any], error: str
) -> None:
    response = report.post("/api/v2/query", json={"site_id": "q", "date_range": "7d", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert response.json()["details"]


def bounce_visits(ch: Client, site: str) -> None:
    """One visit per entry page: /a one page view and an interactive custom event (no
    bounce); /b one page view and a custom event sent `interactive: false` (bounce); /c
    two page views (no bounce); /d one page view and an engagement event (bounce); /e a
    custom event alone, interactive (no bounce); /f a non-interactive one alone (bounce)."""
    t = "10:00:00"
    write(
        ch,
        site,
        {"v": 1, "ts": at(DAY0, t), "path": "/a"},
        {"v": 1, "ts": at(DAY0, "10:01:00"), "visit": at(DAY0, t), "type": "Signup"},
        {"v": 2, "ts": at(DAY0, t), "path": "/b"},
        {"v": 2, "ts": at(DAY0, "10:01:00"), "visit": at(DAY0, t), "type": "Scroll",
         "interactive": False},
        {"v": 3, "ts": at(DAY0, t), "path": "/c"},
        {"v": 3, "ts": at(DAY0, "10:01:00"), "visit": at(DAY0, t), "path": "/c2"},
        {"v": 4, "ts": at(DAY0, t), "path": "/d"},
        {"v": 4, "ts": at(DAY0, "10:01:00"), "type": "engagement", "path": "/d"},
        {"v": 5, "ts": at(DAY0, t), "path": "/e", "type": "Download"},
        {"v": 6, "ts": at(DAY0, t), "path": "/f", "type": "Ping", "interactive": False},
    )  # fmt: skip


def bounces(report: TestClient, site: str) -> tuple[float, dict[str, float]]:
    body = {"site_id": site, "date_range": RANGE, "metrics": ["bounce_rate"]}
    total = query(report, **body)["results"][0]["metrics"][0]
    by_entry = query(report, **body, dimensions=["visit:entry_page"])
    return total, {r["dimensions"][0]: r["metrics"][0] for r in by_entry["results"]}


def test_bounce_rate_as_plausible_defines_it(report: TestClient, ch: Client) -> None:
    """A bounce: fewer than two page views and no interactive custom event."""
    bounce_visits(ch, "b")
    total, by_entry = bounces(report, "b")
    assert by_entry == {"/a": 0.0, "/b": 100.0, "/c": 0.0, "/d": 100.0, "/e": 0.0, "/f": 100.0}
    assert total == 50.0  # 3 of 6 visits (the rule before counted /a, /b, /d: also 3)
    page_only = query(
        report, site_id="b", metrics=["bounce_rate", "visits"],
        filters=[["is", "event:page", ["/a", "/b", "/c"]]],
    )  # fmt: skip
    # Visits with an event on /a, /b or /c: 1 bounce (/b) of 3.
    assert rows(page_only) == [([], [33.33, 3])]


def test_visits_stored_before_migration_0021_count_their_kept_events(
    report: TestClient, ch: Client
) -> None:
    """Visits written before the interactions view existed bounce by page views alone;
    the migration counts the interactive events still in the raw events."""
    ch.command("DROP VIEW session_interactions_mv")
    bounce_visits(ch, "old")
    assert bounces(report, "old")[1] == {
        "/a": 100.0, "/b": 100.0, "/c": 0.0, "/d": 100.0, "/e": 100.0, "/f": 100.0
    }  # fmt: skip
    (step,) = [m for m in load_migrations(90) if m.version == 21]
    for statement in step.up:
        ch.command(statement)
    total, by_entry = bounces(report, "old")
    assert by_entry == {"/a": 0.0, "/b": 100.0, "/c": 0.0, "/d": 100.0, "/e": 0.0, "/f": 100.0}
    for statement in step.up[2:]:  # the backfill again: no bounce changes
        ch.command(statement)
    assert bounces(report, "old") == (total, by_entry) and total == 50.0

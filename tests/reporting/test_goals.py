"""Goals in POST /api/v2/query: the event:goal dimension and filter and conversion_rate,
against hand-computed answers on a small data set written straight into ClickHouse."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from reporting.compiler import compile_query
from reporting.expressions import Binder
from reporting.goals import completed, selected, without_goal_filters
from reporting.model import Condition, Logic
from reporting.parse import parse
from reporting.periods import resolve
from reporting.queries import StatsReader
from reporting.where import match
from schemas.query import QueryBody
from sites.goals import make_goal, page_regex
from tests.helpers import ADMIN, AUTH, D0, D1, DAY0, DAY1, at, create_site, query_v2, rows, write


@pytest.fixture
def app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(admin_token=ADMIN))


def seed(app: TestClient, ch: Client) -> str:
    """Four visitors on one day; four goals, two of which (/pricing, /pri*) match the same
    pageviews:
    v1: / , /pricing, Signup (a custom event on /pricing)
    v2: /pricing, Signup
    v3: /blog/a, /blog/b/c
    v4: /about
    """
    site = create_site(app, "Goals")["site_id"]
    path = f"/api/sites/{site}/goals"
    for goal in (
        {"event_name": "Signup"},
        {"page_path": "/pricing"},
        {"page_path": "/blog/*"},
        {"page_path": "/pri*", "display_name": "Pricing-ish"},
    ):
        assert app.put(path, json=goal, headers=AUTH).status_code == 201
    visit = {"visit": at(DAY0, "10:00:00")}
    write(
        ch,
        site,
        {"v": 1, "ts": at(DAY0, "10:00:00"), "path": "/"},
        {"v": 1, "ts": at(DAY0, "10:01:00"), "path": "/pricing", **visit},
        {"v": 1, "ts": at(DAY0, "10:02:00"), "path": "/pricing", "type": "Signup", **visit},
        {"v": 2, "ts": at(DAY0, "10:00:00"), "path": "/pricing"},
        {"v": 2, "ts": at(DAY0, "10:03:00"), "path": "/pricing", "type": "Signup", **visit},
        {"v": 3, "ts": at(DAY0, "10:00:00"), "path": "/blog/a"},
        {"v": 3, "ts": at(DAY0, "10:04:00"), "path": "/blog/b/c", **visit},
        {"v": 4, "ts": at(DAY0, "10:00:00"), "path": "/about"},
    )
    return site


def test_a_goal_breakdown_counts_an_event_under_every_goal_it_matches(
    app: TestClient, ch: Client
) -> None:
    site = seed(app, ch)
    answer = query_v2(
        app, site, metrics=["visitors", "events", "conversion_rate"], dimensions=["event:goal"]
    )
    # 4 visitors in all: conversion_rate = visitors / 4, one decimal.
    assert dict((d[0], m) for d, m in rows(answer)) == {
        "Signup": [2, 2, 50.0],
        "Visit /pricing": [2, 2, 50.0],
        "Pricing-ish": [2, 2, 50.0],
        "Visit /blog/*": [1, 2, 25.0],
    }
    assert rows(answer)[-1][0] == ["Visit /blog/*"], "by visitors, descending"


def test_goal_filters_keep_the_events_that_complete_a_goal(app: TestClient, ch: Client) -> None:
    site = seed(app, ch)
    metrics = ["visitors", "events", "pageviews", "conversion_rate"]
    blog = query_v2(app, site, metrics=metrics, filters=[["is", "event:goal", ["Visit /blog/*"]]])
    assert rows(blog) == [([], [1, 2, 2, 25.0])]
    # contains "Visit": /pricing and /blog/* (v1, v2, v3; 4 pageviews).
    visit = query_v2(app, site, metrics=metrics, filters=[["contains", "event:goal", ["Visit"]]])
    assert rows(visit) == [([], [3, 4, 4, 75.0])]
    signup = query_v2(
        app,
        site,
        metrics=metrics,
        filters=[["matches", "event:goal", ["^sign"], {"case_sensitive": False}]],
    )
    assert rows(signup) == [([], [2, 2, 0, 50.0])]
    # conversion_rate's whole keeps the other filters: of the 3 visitors on /pricing or
    # /blog/a..., (v1, v2, v3 have a page starting /p or /b), 2 signed up.
    kept = query_v2(
        app,
        site,
        metrics=["visitors", "conversion_rate"],
        filters=[["is", "event:goal", ["Signup"]], ["matches", "event:page", ["^/(p|b)"]]],
    )
    assert rows(kept) == [([], [2, 66.7])]
    # Not the goal: every event that completes none of Signup.
    other = query_v2(app, site, metrics=["events"], filters=[["is_not", "event:goal", ["Signup"]]])
    assert rows(other) == [([], [6])]


def test_goals_are_checked(app: TestClient, ch: Client) -> None:
    site = seed(app, ch)
    unknown = query_v2(
        app, site, 400, metrics=["visitors"], filters=[["is", "event:goal", ["Nope"]]]
    )
    assert unknown["details"][0]["message"] == (
        "Invalid filters. The goal `Nope` is not configured for this site. Find out how to "
        "configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals"
    )
    alone = query_v2(app, site, 400, metrics=["conversion_rate"])
    assert alone["details"][0]["message"] == (
        "Metric `conversion_rate` can only be queried with event:goal filters or dimensions."
    )
    group = query_v2(app, site, 400, metrics=["group_conversion_rate"], dimensions=["event:page"])
    assert group["error"] == (
        "Metric `group_conversion_rate` can only be queried with event:goal filters or dimensions."
    )
    # A deleted goal is no longer a dimension value.
    [signup] = [
        g
        for g in app.get(f"/api/sites/{site}/goals", headers=AUTH).json()["goals"]
        if g["event_name"] == "Signup"
    ]
    app.delete(f"/api/sites/{site}/goals/{signup['id']}", headers=AUTH)
    answer = query_v2(app, site, metrics=["visitors"], dimensions=["event:goal"])
    assert "Signup" not in {d[0] for d, _ in rows(answer)}


def test_a_site_without_goals_has_no_goal_rows(app: TestClient, ch: Client) -> None:
    site = create_site(app, "None")["site_id"]
    write(ch, site, {"v": 1, "ts": at(DAY0, "10:00:00")})
    assert rows(query_v2(app, site, metrics=["visitors"], dimensions=["event:goal"])) == []
    paged = query_v2(
        app, site, metrics=["visitors"], dimensions=["event:goal"],
        include={"total_rows": True}, pagination={"limit": 5, "offset": 5},
    )  # fmt: skip
    assert paged["results"] == [] and paged["meta"]["total_rows"] == 0


def test_a_goal_breakdown_without_goals_is_not_run(ch: Client) -> None:
    # Every row of a goal breakdown is a goal an event completed: without goals the
    # answer is known before the engine reads anything (the dashboard's Goals panel of a
    # site without goals scanned every event of its range, 0.7 s on 10M events).
    query = parse(QueryBody.model_validate(
        {"site_id": "s", "metrics": ["visitors", "conversion_rate"], "date_range": "30d",
         "dimensions": ["event:goal"]}
    ))  # fmt: skip
    period = resolve(query.date_range, ZoneInfo("UTC"), dt.datetime.now(dt.UTC))
    compiled = compile_query(query, period, None, 10)
    assert compiled.no_rows
    with_goal = dataclasses.replace(query, goals=(make_goal("s", event_name="Signup"),))
    assert not compile_query(with_goal, period, None, 10).no_rows
    # The reader answers such a query without the engine: this SQL would fail if run.
    failing = dataclasses.replace(compiled, sql="SELECT throwIf(1, 'ran')")
    reader = StatsReader(ch, "test-")
    assert reader.rows(failing) == [] and list(reader.blocks(failing)) == []


def test_goal_filters_choose_goals_by_display_name() -> None:
    goals = [
        make_goal("s", event_name="Signup"),
        make_goal("s", page_path="/pricing"),
        make_goal("s", page_path="/blog/*", display_name="Blog"),
    ]

    def chosen(
        op: Literal["is", "contains", "matches"], *clauses: str, case: bool = True
    ) -> list[str]:
        condition = Condition(op, "event:goal", clauses, case_sensitive=case)
        return [g.display_name for g in selected(condition, goals)]

    assert chosen("is", "Signup", "Blog") == ["Signup", "Blog"]
    assert chosen("is", "signup") == [] and chosen("is", "signup", case=False) == ["Signup"]
    assert chosen("contains", "Visit") == ["Visit /pricing"]
    assert chosen("matches", "^(Sign|Bl)") == ["Signup", "Blog"]


def test_conversion_rates_whole_drops_top_level_goal_and_property_filters() -> None:
    goal = Condition("is", "event:goal", ("Signup",))
    prop = Condition("is", "event:props:plan", ("pro",))
    page = Condition("is", "event:page", ("/",))
    nested = Logic("or", (goal, page))
    assert without_goal_filters((goal, prop, page, nested)) == (page, nested)


def test_goal_places_bind_every_value() -> None:
    binder = Binder()
    sql = completed(
        [make_goal("s", event_name="Buy"), make_goal("s", page_path="/a*")], binder.bind
    )
    assert "Buy" not in sql and "/a" not in sql
    assert binder.parameters == {
        "p0": ["Buy"], "p1": [1], "p2": ["^/a.*$"], "p3": [2],
    }  # fmt: skip
    assert completed([], binder.bind) == "CAST([], 'Array(UInt16)')"


def test_goal_filters_share_one_set_of_patterns() -> None:
    # However many goal conditions a client sends, the site's patterns are bound (and
    # compiled by the engine) once; each condition binds only the places it selects.
    goals = tuple(make_goal("s", page_path=f"/p{i}/*") for i in range(50))
    binder = Binder(goals=goals)
    conditions = tuple(Condition("contains", "event:goal", (f"/p{i}/",)) for i in range(50))
    sql = match((Logic("or", conditions), Logic("not", (conditions[0],))), binder)
    patterns = [v for v in binder.parameters.values() if v and str(v[0]).startswith("^")]
    assert patterns == [[page_regex(g.page_path) for g in goals]]
    assert sql.count("multiMatchAllIndices") == 51  # one expression text: computed once
    assert len(binder.parameters) == 2 + 51  # patterns, their places, one set a condition


def seed_sources(app: TestClient, ch: Client) -> str:
    """Six visitors over two days, one goal (Signup); three of them sign up:
    DAY0: v1 Google, signs up; v2 Google; v3 X (Twitter), signs up
    DAY1: v4 Google; v5 direct, signs up; v6 direct
    """
    site = create_site(app, "Sources")["site_id"]
    path = f"/api/sites/{site}/goals"
    assert app.put(path, json={"event_name": "Signup"}, headers=AUTH).status_code == 201
    google, twitter = {"source": "Google"}, {"source": "X (Twitter)"}
    write(
        ch,
        site,
        {"v": 1, "ts": at(DAY0, "10:00:00"), **google},
        {"v": 1, "ts": at(DAY0, "10:05:00"), "visit": at(DAY0, "10:00:00"), "type": "Signup",
         **google},
        {"v": 2, "ts": at(DAY0, "11:00:00"), **google},
        {"v": 3, "ts": at(DAY0, "12:00:00"), **twitter},
        {"v": 3, "ts": at(DAY0, "12:01:00"), "visit": at(DAY0, "12:00:00"), "type": "Signup",
         **twitter},
        {"v": 4, "ts": at(DAY1, "09:00:00"), **google},
        {"v": 5, "ts": at(DAY1, "10:00:00")},
        {"v": 5, "ts": at(DAY1, "10:02:00"), "visit": at(DAY1, "10:00:00"), "type": "Signup"},
        {"v": 6, "ts": at(DAY1, "11:00:00")},
    )  # fmt: skip
    return site


SIGNUP = [["is", "event:goal", ["Signup"]]]
RATES = ["visitors", "conversion_rate", "group_conversion_rate"]


def test_conversion_rates_by_source(app: TestClient, ch: Client) -> None:
    site = seed_sources(app, ch)
    answer = query_v2(
        app, site, metrics=RATES, dimensions=["visit:source"], filters=SIGNUP, date_range=[D0, D1]
    )
    # Each source has one converted visitor. conversion_rate divides by the 6 visitors
    # of the whole range: 1/6 = 16.7. group_conversion_rate by the source's visitors
    # (no goal filter): Direct v5, v6 -> 1/2 = 50.0; Google v1, v2, v4 -> 1/3 = 33.3;
    # X (Twitter) v3 -> 1/1 = 100.0. Ties on visitors: by source, ascending (X (Twitter),
    # Plausible's name for hitstream's former Twitter, sorts last as Twitter did).
    assert rows(answer) == [
        (["Direct / None"], [1, 16.7, 50.0]),
        (["Google"], [1, 16.7, 33.3]),
        (["X (Twitter)"], [1, 16.7, 100.0]),
    ]
    # The other filters stay in both wholes: Google alone has 3 visitors, 1 converted.
    google = query_v2(
        app,
        site,
        metrics=RATES,
        dimensions=["visit:source"],
        filters=[*SIGNUP, ["is", "visit:source", ["Google"]]],
        date_range=[D0, D1],
    )
    assert rows(google) == [(["Google"], [1, 33.3, 33.3])]
    # Without dimensions the group is the whole query: both rates are 3/6.
    whole = query_v2(app, site, metrics=RATES, filters=SIGNUP, date_range=[D0, D1])
    assert rows(whole) == [([], [3, 50.0, 50.0])]


def test_conversion_rates_by_day_and_compared(app: TestClient, ch: Client) -> None:
    site = seed_sources(app, ch)
    day2 = (DAY1 + (DAY1 - DAY0)).isoformat()
    answer = query_v2(
        app,
        site,
        metrics=RATES,
        dimensions=["time:day"],
        filters=SIGNUP,
        date_range=[D0, day2],
        include={"time_labels": True, "fill_empty": True},
    )
    # DAY0: v1, v3 converted of 6 in the range (33.3) and of the day's 3 (66.7);
    # DAY1: v5 of 6 (16.7) and of the day's 3 (33.3); DAY2 has no events: zeros.
    assert rows(answer) == [
        ([D0], [2, 33.3, 66.7]),
        ([D1], [1, 16.7, 33.3]),
        ([day2], [0, 0.0, 0.0]),
    ]
    assert answer["meta"]["time_labels"] == [D0, D1, day2]
    # DAY1 compared with DAY0: 1 of 3 (33.3) then 2 of 3 (66.7); change in points.
    compared = query_v2(
        app,
        site,
        metrics=RATES,
        filters=SIGNUP,
        date_range=[D1, D1],
        include={"compare": "previous_period"},
    )
    [row] = compared["results"]
    assert row["metrics"] == [1, 33.3, 33.3]
    assert row["comparison"]["metrics"] == [2, 66.7, 66.7]
    assert row["comparison"]["change"] == [-50, -33.4, -33.4]


@pytest.mark.parametrize(
    "body",
    [
        {"dimensions": ["event:goal", "visit:source"]},
        {"dimensions": ["event:goal"], "metrics": ["group_conversion_rate", "visitors"]},
        {"dimensions": ["time"], "metrics": [*RATES, "visits", "bounce_rate"], "filters": SIGNUP},
        {"dimensions": ["event:props:plan", "time:hour"], "filters": SIGNUP},
        {"dimensions": ["visit:source"], "metrics": [*RATES, "percentage", "total_revenue"],
         "filters": SIGNUP, "include": {"total_rows": True}, "pagination": {"offset": 1}},
        {"dimensions": ["visit:source"], "filters": SIGNUP, "format": "csv",
         "order_by": [["group_conversion_rate", "asc"]]},
        {"dimensions": ["visit:source"], "filters": SIGNUP,
         "include": {"comparisons": {"mode": "previous_period"}}},
    ],
)  # fmt: skip
def test_conversion_rates_answer_with_everything_else(
    app: TestClient, ch: Client, body: dict[str, Any]
) -> None:
    site = seed_sources(app, ch)
    body = {"metrics": RATES, "date_range": [D0, D1], **body}
    answer = app.post("/api/v2/query", json={"site_id": site, **body}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    if body.get("format") == "csv":
        assert (
            answer.text.splitlines()[0]
            == "visit:source,visitors,conversion_rate,group_conversion_rate"
        )
        return
    for row in answer.json()["results"]:
        rates = [v for m, v in zip(body["metrics"], row["metrics"], strict=True) if "conv" in m]
        assert all(isinstance(r, float) and 0 <= r <= 100 for r in rates)

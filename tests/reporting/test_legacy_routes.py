"""Plausible's Stats API v1 against hand-computed answers on a small data set written
straight into ClickHouse (tests/helpers.py seed_visits, tests/reporting/test_query.py's
too), and against `POST /api/v2/query` (the same numbers); who may call it; `site_id` as
a domain, for v1 and v2."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from tests.helpers import (
    ADMIN,
    AUTH,
    D0,
    D1,
    DAY0,
    DAY1,
    at,
    create_site,
    query_v2,
    rows,
    seed_visits,
    write,
)

DOMAIN = "shop.example"
V1 = "/api/v1/stats"
DAYS = [D0, D1]  # the two days of seed_visits (tests/helpers.py)


@pytest.fixture
def app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(ingest_auth="key", admin_token=ADMIN))


@pytest.fixture
def site(app: TestClient) -> dict[str, Any]:
    return create_site(app, "shop", domains=[DOMAIN, "www.shop.example"])


def key_of(site: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {site['api_key']}"}


def v1(app: TestClient, endpoint: str, headers: dict[str, str], **params: str) -> Any:
    params.setdefault("site_id", DOMAIN)
    response = app.get(f"{V1}/{endpoint}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def refused(app: TestClient, path: str, headers: dict[str, str], **params: str) -> tuple[int, str]:
    response = app.get(f"{V1}/{path}", params=params, headers=headers)
    body = response.json()
    assert set(body) == {"error", "details"}
    return response.status_code, body["error"]


EVERY = "visitors,visits,pageviews,events,bounce_rate,visit_duration,views_per_visit"
CUSTOM = {"period": "custom", "date": f"{D0},{D1}"}


def test_aggregate_as_by_hand_and_as_v2(app: TestClient, ch: Client, site: dict[str, Any]) -> None:
    seed_visits(ch, site["site_id"])
    answer = v1(app, "aggregate", key_of(site), metrics=EVERY, **CUSTOM, with_imported="true")
    # bounce: 2 of 4 visits; duration (1200 + 0 + 0 + 3597) / 4 = 1199.25; 7 views / 4 visits
    assert answer == {"results": {
        "visitors": {"value": 3}, "visits": {"value": 4}, "pageviews": {"value": 7},
        "events": {"value": 8}, "bounce_rate": {"value": 50}, "visit_duration": {"value": 1199},
        "views_per_visit": {"value": 1.75},
    }}  # fmt: skip
    same = query_v2(app, DOMAIN, headers=key_of(site), date_range=DAYS, metrics=EVERY.split(","))
    assert rows(same) == [([], [3, 4, 7, 8, 50.0, 1199, 1.75])]


@pytest.mark.parametrize(
    ("filters", "v2_filters"),
    [
        ("visit:source==Google", [["is", "visit:source", ["Google"]]]),
        ("visit:country==DE;event:page!=/blog",
         [["is", "visit:country", ["DE"]], ["is_not", "event:page", ["/blog"]]]),
        ("event:page==/docs*", [["matches", "event:page", ["^/docs.*$"]]]),
        ("visit:browser==Chrome|Safari", [["is", "visit:browser", ["Chrome", "Safari"]]]),
        ("visit:source==Direct / None", [["is", "visit:source", ["Direct / None"]]]),
    ],
)  # fmt: skip
def test_filtered_aggregates_equal_v2(
    app: TestClient, ch: Client, site: dict[str, Any], filters: str, v2_filters: list[Any]
) -> None:
    seed_visits(ch, site["site_id"])
    metrics = "visitors,visits,pageviews,bounce_rate"
    answer = v1(app, "aggregate", AUTH, metrics=metrics, filters=filters, **CUSTOM)
    body = {"metrics": metrics.split(","), "filters": v2_filters, "date_range": DAYS}
    same = rows(query_v2(app, DOMAIN, headers=AUTH, **body))[0][1]
    assert [answer["results"][m]["value"] for m in metrics.split(",")] == [round(v) for v in same]
    assert answer["results"]["visitors"]["value"] > 0


def test_wildcard_filter_by_hand(app: TestClient, ch: Client, site: dict[str, Any]) -> None:
    seed_visits(ch, site["site_id"])
    answer = v1(app, "aggregate", AUTH, metrics="visitors,pageviews",
                filters="event:page==/docs/**|/blog", **CUSTOM)  # fmt: skip
    assert answer["results"] == {"visitors": {"value": 2}, "pageviews": {"value": 2}}


def test_compare_with_the_previous_period(
    app: TestClient, ch: Client, site: dict[str, Any]
) -> None:
    seed_visits(ch, site["site_id"])
    answer = v1(app, "aggregate", AUTH, metrics="visitors,pageviews,bounce_rate",
                period="day", date=D1, compare="previous_period")  # fmt: skip
    assert answer["results"] == {
        "visitors": {"value": 1, "comparison_value": 2, "change": -50},
        "pageviews": {"value": 3, "comparison_value": 4, "change": -25},
        # DAY0: 2 of 3 visits bounced (66.67, rounded 67); DAY1: none
        "bounce_rate": {"value": 0, "comparison_value": 67, "change": -67},
    }


# The types Airbyte's Plausible source declares for each record (airbyte-source-plausible
# 0.1.14, source_plausible/manifest.yaml): null only for the bounce rate and duration.
AIRBYTE_TYPES = {"date": (str,), "visitors": (int,), "pageviews": (int,), "visits": (int,),
                 "bounce_rate": (int, type(None)), "visit_duration": (int, type(None))}  # fmt: skip


def test_the_airbyte_call(app: TestClient, ch: Client, site: dict[str, Any]) -> None:
    """As Airbyte's Plausible source sends it: a domain, a custom range, a Bearer key."""
    seed_visits(ch, site["site_id"])
    before, after = DAY0 - timedelta(days=1), DAY1 + timedelta(days=1)
    response = app.get(
        f"{V1}/timeseries?site_id={DOMAIN}&period=custom&date={before},{after}"
        "&metrics=visitors,pageviews,bounce_rate,visit_duration,visits",
        headers=key_of(site),
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    # Empty days as Plausible fills them: a null duration, a zero bounce rate.
    empty = {"visitors": 0, "pageviews": 0, "bounce_rate": 0, "visit_duration": None,
             "visits": 0}  # fmt: skip
    assert results == [
        {"date": before.isoformat(), **empty},
        # 3 visits: (1200 + 0 + 0) / 3 = 400 s; 2 bounced (66.67%, whole: 67)
        {"date": D0, "visitors": 2, "pageviews": 4, "bounce_rate": 67, "visit_duration": 400,
         "visits": 3},
        {"date": D1, "visitors": 1, "pageviews": 3, "bounce_rate": 0, "visit_duration": 3597,
         "visits": 1},
        {"date": after.isoformat(), **empty},
    ]  # fmt: skip
    assert all(isinstance(r[k], AIRBYTE_TYPES[k]) for r in results for k in r)
    metrics = ["visitors", "pageviews", "bounce_rate", "visit_duration", "visits"]
    same = query_v2(
        app, DOMAIN, headers=key_of(site), date_range=DAYS, metrics=metrics, dimensions=["time:day"]
    )
    assert rows(same) == [([D0], [2, 4, 66.67, 400, 3]), ([D1], [1, 3, 0.0, 3597, 1])]


def test_timeseries_buckets(app: TestClient, ch: Client, site: dict[str, Any]) -> None:
    seed_visits(ch, site["site_id"])
    hours = v1(app, "timeseries", AUTH, period="day", date=D0)["results"]
    assert [r["date"] for r in hours] == [f"{D0} {h:02}:00:00" for h in range(24)]
    assert {r["date"][-8:]: r["visitors"] for r in hours if r["visitors"]} == {
        "10:00:00": 2, "12:00:00": 1,
    }  # fmt: skip
    days = v1(app, "timeseries", AUTH, period="7d", date=DAY1.isoformat())["results"]
    assert len(days) == 7 and days[-1]["date"] == (DAY1 - timedelta(days=1)).isoformat()
    months = v1(app, "timeseries", AUTH, period="12mo", metrics="pageviews")["results"]
    assert len(months) == 12 and all(r["date"].endswith("-01") for r in months)
    assert sum(r["pageviews"] for r in months) == 7


def test_breakdowns(app: TestClient, ch: Client, site: dict[str, Any]) -> None:
    seed_visits(ch, site["site_id"])
    pages = v1(app, "breakdown", AUTH, property="event:page", metrics="visitors,pageviews",
               **CUSTOM)["results"]  # fmt: skip
    assert pages == [
        {"page": "/", "visitors": 2, "pageviews": 2},
        {"page": "/pricing", "visitors": 2, "pageviews": 2},
        {"page": "/blog", "visitors": 1, "pageviews": 1},
        {"page": "/docs", "visitors": 1, "pageviews": 1},
        {"page": "/docs/api", "visitors": 1, "pageviews": 1},
    ]
    same = query_v2(app, DOMAIN, headers=AUTH, date_range=DAYS, metrics=["visitors", "pageviews"],
                    dimensions=["event:page"],
                    order_by=[["visitors", "desc"], ["event:page", "asc"]])  # fmt: skip
    assert [([r["page"]], [r["visitors"], r["pageviews"]]) for r in pages] == rows(same)
    sources = v1(app, "breakdown", AUTH, property="visit:source",
                 metrics="visitors,bounce_rate", **CUSTOM)["results"]  # fmt: skip
    assert sources == [
        {"source": "Direct / None", "visitors": 1, "bounce_rate": 100},
        {"source": "GitHub", "visitors": 1, "bounce_rate": 0},
        {"source": "Google", "visitors": 1, "bounce_rate": 0},
        # seed_visits stores Plausible's name, X (Twitter) (hitstream's older one was
        # Twitter): v2's one visit, a bounce; ties on visitors by name, so still last.
        {"source": "X (Twitter)", "visitors": 1, "bounce_rate": 100},
    ]
    plans = v1(app, "breakdown", AUTH, property="event:props:plan", metrics="visitors,events",
               filters="event:name==Signup", **CUSTOM)["results"]  # fmt: skip
    assert plans == [{"plan": "pro", "visitors": 1, "events": 1}]
    versions = v1(app, "breakdown", AUTH, property="visit:browser_version", **CUSTOM)["results"]
    assert {(r["browser"], r["visitors"]) for r in versions} == {("Chrome", 2), ("Safari", 1)}
    assert all(set(r) == {"browser", "browser_version", "visitors"} for r in versions)
    # campaigns: visits without one are left out, as Plausible leaves them out
    campaigns = v1(app, "breakdown", AUTH, property="visit:utm_campaign", **CUSTOM)["results"]
    assert campaigns == [{"utm_campaign": "spring", "visitors": 1}]
    # countries: visits without one are left out the same way (not a 400 on the label)
    countries = v1(app, "breakdown", AUTH, property="visit:country", **CUSTOM)["results"]
    assert all(len(r["country"]) == 2 and set(r) == {"country", "visitors"} for r in countries)


def test_breakdown_pages(app: TestClient, ch: Client, site: dict[str, Any]) -> None:
    seed_visits(ch, site["site_id"])
    pages = [
        [
            r["page"]
            for r in v1(
                app, "breakdown", AUTH, property="event:page", limit="2", page=str(n), **CUSTOM
            )["results"]
        ]
        for n in (1, 2, 3, 4)
    ]
    assert pages == [["/", "/pricing"], ["/blog", "/docs"], ["/docs/api"], []]
    far = v1(app, "breakdown", AUTH, property="event:page", limit="1000", page="999999999")
    assert far == {"results": []}


def test_realtime_visitors_is_a_bare_number(
    app: TestClient, ch: Client, site: dict[str, Any]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = lambda delta: (now - delta).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    write(
        ch,
        site["site_id"],
        {"v": 1, "ts": clock(timedelta(minutes=1))},
        {"v": 2, "ts": clock(timedelta(minutes=2)), "type": "Signup"},
        {"v": 3, "ts": clock(timedelta(minutes=10))},
    )
    response = app.get(f"{V1}/realtime/visitors", params={"site_id": DOMAIN}, headers=key_of(site))
    assert response.status_code == 200
    assert response.text == "2"


ENDPOINTS = ["realtime/visitors", "aggregate", "timeseries", "breakdown?property=event:page"]
INVALID = (
    "Invalid API key or site ID. Please make sure you're using a valid API key with access "
    "to the site you've requested."
)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_who_may_call(app: TestClient, site: dict[str, Any], endpoint: str) -> None:
    other = create_site(app, "other", domains=["other.example"])
    share = app.post(f"/api/sites/{site['site_id']}/shares", headers=AUTH).json()["token"]
    path, _, query = endpoint.partition("?")
    params = dict([query.split("=")]) if query else {}
    for name in (DOMAIN, "WWW.shop.example", site["site_id"]):
        for headers in (AUTH, key_of(site), {"Authorization": f"Bearer {share}"},
                        {"x-api-key": site["api_key"]}):  # fmt: skip
            response = app.get(f"{V1}/{path}", params={**params, "site_id": name}, headers=headers)
            assert response.status_code == 200, response.text
    assert refused(app, path, {}, site_id=DOMAIN, **params) == (
        401,
        "Missing API key. Please use a valid Plausible API key as a Bearer Token.",
    )
    assert refused(app, path, {"Authorization": "Basic abc"}, site_id=DOMAIN, **params)[0] == 401
    assert refused(app, path, AUTH, **params) == (
        400,
        "Missing site ID. Please provide the required site_id parameter with your request.",
    )
    for headers, name in [
        (key_of(other), DOMAIN),  # another site's key
        ({"Authorization": "Bearer hs_nope_nope"}, DOMAIN),  # no key of ours
        (key_of(site), "nowhere.example"),  # an unknown site with a valid key (S5)
        (AUTH, "nowhere.example"),  # even the admin's
        (AUTH, "x" * 200),
    ]:
        assert refused(app, path, headers, site_id=name, **params) == (401, INVALID)


def test_open_mode_needs_no_key(
    make_client: Callable[..., TestClient], settings: Settings, ch: Client
) -> None:
    app = make_client(settings)
    write(ch, "laptop", {"v": 1, "ts": at(DAY0, "10:00:00")})
    answer = v1(app, "aggregate", {}, site_id="laptop", **CUSTOM)
    assert answer == {"results": {"visitors": {"value": 1}}}


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("aggregate", {"period": "year"}, "Error parsing `period` parameter: invalid period "
         "`year`. Please find accepted values in our docs: https://plausible.io/docs/stats-api#time-periods"),
        ("aggregate", {"period": "custom"}, "The `date` parameter is required when using a "
         "custom period. See https://plausible.io/docs/stats-api#time-periods"),
        ("aggregate", {"metrics": "time_on_page"}, "The metric `time_on_page` is not "
         "recognized. Find valid metrics from the documentation: https://plausible.io/docs/stats-api#metrics"),
        ("aggregate", {"filters": "event:goal==Signup"}, "The goal `Signup` is not configured "
         "for this site. Find out how to configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals"),
        ("timeseries", {"interval": "week"}, "Error parsing `interval` parameter: invalid "
         "interval `week`. Valid intervals are `day`, `month`"),
        ("timeseries", {"period": "custom", "date": "2000-01-01,2099-12-31"},
         "time:day over this range makes more than 10000 buckets: choose a coarser time "
         "dimension or a shorter range"),
        ("breakdown", {}, "The `property` parameter is required. Please provide at least one "
         "property to show a breakdown by."),
        ("breakdown", {"property": "event:page", "metrics": "conversion_rate"}, "Metric "
         "`conversion_rate` can only be queried in a goal breakdown or with a goal filter"),
        ("breakdown", {"property": "event:page", "metrics": "views_per_visit"},
         "Metric `views_per_visit` is not supported in breakdown queries."),
        ("breakdown", {"property": "event:page", "limit": "1001"},
         "Please provide limit as a number between 1 and 1000."),
        ("breakdown", {"property": "event:page", "page": "0"},
         "Please provide page as a positive number."),
    ],
)  # fmt: skip
def test_refusals(
    app: TestClient, site: dict[str, Any], path: str, params: dict[str, str], message: str
) -> None:
    status, error = refused(app, path, AUTH, site_id=DOMAIN, **params)
    assert status == 400
    assert error.endswith(message)


def test_v2_takes_a_domain_as_site_id(app: TestClient, ch: Client, site: dict[str, Any]) -> None:
    seed_visits(ch, site["site_id"])
    other = create_site(app, "other", domains=["other.example"])
    by_domain = query_v2(app, DOMAIN, headers=key_of(site), date_range=DAYS, metrics=["visitors"])
    assert rows(by_domain) == [([], [3])]
    assert by_domain["query"]["site_id"] == DOMAIN  # echoed as sent
    assert rows(
        query_v2(app, site["site_id"], headers=key_of(site), date_range=DAYS, metrics=["visitors"])
    ) == [([], [3])]
    refused_ = app.post(
        "/api/v2/query",
        json={"site_id": "other.example", "metrics": ["visitors"], "date_range": "day"},
        headers=key_of(site),
    )
    assert refused_.status_code == 403
    assert rows(
        query_v2(app, "other.example", headers=key_of(other), date_range=DAYS, metrics=["visitors"])
    ) == [([], [0])]


# Plausible's documented v1 calls (plausible/docs docs/stats-api-v1.md: each endpoint's
# "Try it yourself" and "Examples of common queries"), as written but for the site.
DOCUMENTED = [
    ("aggregate?period=6mo&metrics=visitors,pageviews,bounce_rate,visit_duration",
     {"results": {"visitors": {"value": 3}, "pageviews": {"value": 7},
                  "bounce_rate": {"value": 50}, "visit_duration": {"value": 1199}}}),
    ("breakdown?period=6mo&property=visit:source&metrics=visitors,bounce_rate&limit=5",
     {"results": [{"source": "Direct / None", "visitors": 1, "bounce_rate": 100},
                  {"source": "GitHub", "visitors": 1, "bounce_rate": 0},
                  {"source": "Google", "visitors": 1, "bounce_rate": 0},
                  {"source": "X (Twitter)", "visitors": 1, "bounce_rate": 100}]}),
    ("breakdown?period=6mo&property=event:page&limit=5",
     {"results": [{"page": "/", "visitors": 2}, {"page": "/pricing", "visitors": 2},
                  {"page": "/blog", "visitors": 1}, {"page": "/docs", "visitors": 1},
                  {"page": "/docs/api", "visitors": 1}]}),
    ("aggregate?period=6mo&filters=event:page%3D%3D%2Fpricing",
     {"results": {"visitors": {"value": 2}}}),
]  # fmt: skip


@pytest.fixture
def kept(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    """Raw events kept for ever (HITSTREAM_RAW_TTL_DAYS=0): 6mo reaches past 90 days."""
    return make_client(make_settings(ingest_auth="key", admin_token=ADMIN, raw_ttl_days=0))


@pytest.mark.parametrize(("call", "expected"), DOCUMENTED)
def test_plausibles_documented_calls(
    kept: TestClient, ch: Client, call: str, expected: Any
) -> None:
    app, site = kept, create_site(kept, "shop", domains=[DOMAIN])
    seed_visits(ch, site["site_id"])
    response = app.get(f"{V1}/{call}&site_id={DOMAIN}", headers=key_of(site))
    assert response.status_code == 200, response.text
    assert response.json() == expected


def test_plausibles_documented_timeseries(kept: TestClient, ch: Client) -> None:
    app, site = kept, create_site(kept, "shop", domains=[DOMAIN])
    seed_visits(ch, site["site_id"])
    for call, total in [("period=6mo", 3), ("period=6mo&filters=visit:source%3D%3DGoogle", 1)]:
        response = app.get(f"{V1}/timeseries?{call}&site_id={DOMAIN}", headers=key_of(site))
        results = response.json()["results"]
        assert len(results) == 6 and all(r["date"].endswith("-01") for r in results)
        assert sum(r["visitors"] for r in results) == total  # each visitor on one day


def test_the_documented_goal_breakdown(kept: TestClient, ch: Client) -> None:
    """`event:props:method` filtered by the goal `Download`: a 400 until the goal exists."""
    app, site = kept, create_site(kept, "shop", domains=[DOMAIN])
    call = "breakdown?period=6mo&property=event:props:method&filters=event:goal%3D%3DDownload"
    response = app.get(f"{V1}/{call}&site_id={DOMAIN}", headers=key_of(site))
    assert response.status_code == 400
    assert response.json()["error"].startswith("The goal `Download` is not configured")
    add_goals(app, site["site_id"], {"event_name": "Download"})
    write(ch, site["site_id"], {"v": 1, "ts": at(DAY0, "10:00:00"), "type": "Download",
                                "props": {"method": "HTTP"}})  # fmt: skip
    response = app.get(f"{V1}/{call}&site_id={DOMAIN}", headers=key_of(site))
    assert response.json() == {"results": [{"method": "HTTP", "visitors": 1}]}


def add_goals(app: TestClient, site_id: str, *goals: dict[str, str]) -> None:
    for goal in goals:
        response = app.put(f"/api/sites/{site_id}/goals", json=goal, headers=AUTH)
        assert response.status_code == 201, response.text


def test_goals_and_conversion_rates(app: TestClient, ch: Client, site: dict[str, Any]) -> None:
    """On seed_visits's data (3 visitors: v1 and v2 on DAY0, v3 on DAY1) with two goals:
    Signup (v1's custom event) and Visit /pricing (v1's and v2's /pricing pageviews)."""
    seed_visits(ch, site["site_id"])
    add_goals(app, site["site_id"], {"event_name": "Signup"}, {"page_path": "/pricing"})
    key, rate = key_of(site), "visitors,events,conversion_rate"
    # conversion_rate over the 3 visitors of the range: Signup 1/3, either goal 2/3
    # (v1, v2; the Signup event and two /pricing pageviews: 3 events).
    signup = v1(app, "aggregate", key, metrics=rate, filters="event:goal==Signup", **CUSTOM)
    assert signup == {"results": {
        "visitors": {"value": 1}, "events": {"value": 1}, "conversion_rate": {"value": 33.3},
    }}  # fmt: skip
    either = v1(
        app, "aggregate", key, metrics=rate, filters="event:goal==Signup|Visit /pricing", **CUSTOM
    )
    assert either["results"]["conversion_rate"] == {"value": 66.7}
    assert either["results"]["events"] == {"value": 3}
    # By goal, the metric's largest first; each goal's rate over all 3 visitors.
    by_goal = v1(app, "breakdown", key, metrics=rate, property="event:goal", **CUSTOM)
    assert by_goal == {"results": [
        {"goal": "Visit /pricing", "visitors": 2, "events": 2, "conversion_rate": 66.7},
        {"goal": "Signup", "visitors": 1, "events": 1, "conversion_rate": 33.3},
    ]}  # fmt: skip
    # By country, per group: DE has v1 and v3, of whom v1 signed up (50.0); US (v2) did
    # not sign up and has no row.
    signed = {"metrics": "visitors,conversion_rate", "filters": "event:goal==Signup"}
    by_country = v1(app, "breakdown", key, property="visit:country", **signed, **CUSTOM)
    assert by_country == {"results": [{"country": "DE", "visitors": 1, "conversion_rate": 50.0}]}
    # By a property, over the whole query (Plausible's exception): 1 of 3.
    by_plan = v1(app, "breakdown", key, property="event:props:plan", **signed, **CUSTOM)
    assert by_plan == {"results": [{"plan": "pro", "visitors": 1, "conversion_rate": 33.3}]}
    # Per day: DAY0 v1 of v1, v2 (50.0); DAY1 (v3) no conversion: 0 and 0.0.
    days = v1(app, "timeseries", key, **signed, **CUSTOM)
    assert days == {"results": [
        {"date": D0, "visitors": 1, "conversion_rate": 50.0},
        {"date": D1, "visitors": 0, "conversion_rate": 0.0},
    ]}  # fmt: skip
    # DAY1 (0 of 1) compared with DAY0 (1 of 2): the change in points.
    day = {"period": "day", "date": D1, "compare": "previous_period"}
    compared = v1(app, "aggregate", key, **signed, **day)
    assert compared["results"]["conversion_rate"] == {
        "value": 0.0, "comparison_value": 50.0, "change": -50.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("aggregate", {"filters": "event:goal==Visit /nope"}, "The pageview goal for the "
         "pathname `/nope` is not configured for this site. Find out how to configure goals "
         "here: https://plausible.io/docs/stats-api#filtering-by-goals"),
        ("aggregate", {"filters": "event:goal==Signup", "metrics": "visitors,bounce_rate"},
         "Session metric `bounce_rate` cannot be queried when using a filter on `event:goal`."),
        ("timeseries", {"filters": "event:goal==Signup", "metrics": "visit_duration"},
         "Session metric `visit_duration` cannot be queried when using a filter on "
         "`event:goal`."),
        ("breakdown", {"property": "event:goal", "metrics": "visits"},
         "Session metric `visits` cannot be queried for breakdown by `event:goal`."),
        ("aggregate", {"metrics": "conversion_rate"}, "Metric `conversion_rate` can only be "
         "queried in a goal breakdown or with a goal filter"),
    ],
)  # fmt: skip
def test_goal_refusals(
    app: TestClient, site: dict[str, Any], path: str, params: dict[str, str], message: str
) -> None:
    add_goals(app, site["site_id"], {"event_name": "Signup"})
    assert refused(app, path, AUTH, site_id=DOMAIN, **params) == (400, message)


def test_the_airbyte_default_range_beyond_raw_retention(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings], ch: Client
) -> None:
    """Airbyte's default start is 2019-01-01: its metrics are kept for every day (the
    visits table and daily aggregates), past HITSTREAM_RAW_TTL_DAYS."""
    app = make_client(make_settings(ingest_auth="key", admin_token=ADMIN, raw_ttl_days=90))
    site = create_site(app, "old", domains=[DOMAIN])
    seed_visits(ch, site["site_id"])
    today = datetime.now(UTC).date().isoformat()
    response = app.get(
        f"{V1}/timeseries?site_id={DOMAIN}&period=custom&date=2019-01-01,{today}"
        "&metrics=visitors,pageviews,bounce_rate,visit_duration,visits",
        headers=key_of(site),
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["date"] == "2019-01-01" and results[-1]["date"] == today
    assert sum(r["visitors"] for r in results) == 3


def test_past_raw_retention_event_filters_are_refused(
    app: TestClient, ch: Client, site: dict[str, Any]
) -> None:
    """With the default 90 days of raw events, 6mo filtered on a page reaches expired days."""
    seed_visits(ch, site["site_id"])
    status, error = refused(
        app, "aggregate", key_of(site), site_id=DOMAIN, period="6mo", filters="event:page==/"
    )
    assert status == 400
    assert error.startswith("date: raw events before ") and "have expired" in error


def test_breakdown_by_region(app: TestClient, ch: Client, site: dict[str, Any]) -> None:
    """visit:region rows are keyed `region` (the ISO 3166-2 code); visits without one are
    left out, as Plausible leaves them out. visit:city (a GeoNames id) is a 400 saying why."""
    berlin = {"country": "DE", "region": "DE-BE", "region_name": "Berlin", "city_name": "Berlin"}
    write(
        ch,
        site["site_id"],
        {"v": 1, "ts": at(DAY0, "10:00:00"), **berlin},
        {"v": 2, "ts": at(DAY0, "11:00:00"), **berlin},
        {"v": 3, "ts": at(DAY0, "12:00:00"), "country": "US", "region": "US-CA",
         "region_name": "California", "city_name": "Mountain View"},
        {"v": 4, "ts": at(DAY0, "13:00:00"), "country": "US"},
    )  # fmt: skip
    regions = v1(app, "breakdown", AUTH, property="visit:region", **CUSTOM)["results"]
    assert regions == [{"region": "DE-BE", "visitors": 2}, {"region": "US-CA", "visitors": 1}]
    californians = v1(app, "aggregate", AUTH, filters="visit:region==US-CA", **CUSTOM)
    assert californians["results"] == {"visitors": {"value": 1}}
    for params in ({"property": "visit:city"}, {"filters": "visit:city==2950159"}):
        endpoint = "breakdown" if "property" in params else "aggregate"
        response = app.get(
            f"{V1}/{endpoint}", params={"site_id": DOMAIN, **params, **CUSTOM}, headers=AUTH
        )
        assert response.status_code == 400
        assert "visit:city_name" in response.json()["error"]

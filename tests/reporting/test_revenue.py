"""Revenue metrics in POST /api/v2/query (reporting/revenue.py): sums and averages in the
revenue goal's currency, amounts in other currencies left out, Plausible's value shape
and warnings, against hand-computed answers on events written straight into ClickHouse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from reporting.revenue import money
from tests.helpers import ADMIN, AUTH, DAY0, at, create_site, query_v2, rows, write

RANGE = [DAY0.isoformat(), DAY0.isoformat()]
NO_SINGLE = {
    "code": "no_single_revenue_currency",
    "warning": "Revenue metrics are null as there are multiple currencies for the selected "
    "event:goals.",
}
NO_GOALS = {
    "code": "no_revenue_goals_matching",
    "warning": "Revenue metrics are null as there are no matching revenue goals.",
}
BOTH = ["total_revenue", "average_revenue"]


@pytest.fixture
def app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(admin_token=ADMIN))


def seed(app: TestClient, ch: Client, goals: bool = True) -> str:
    """Goals Purchase (USD), Donation (EUR), Signup (no currency), Visit /pricing:
    v1: /pricing, Purchase 10.50 USD
    v2: Purchase 20 USD, Purchase 5 EUR (another currency: left out)
    v3: Donation 7.25 EUR
    v4: Signup 100 USD (not a revenue goal: left out)
    """
    site = create_site(app, "Shop")["site_id"]
    path = f"/api/sites/{site}/goals"
    for goal in (
        {"event_name": "Purchase", "currency": "USD"},
        {"event_name": "Donation", "currency": "EUR"},
        {"event_name": "Signup"},
        {"page_path": "/pricing"},
    ):
        if goals:
            assert app.put(path, json=goal, headers=AUTH).status_code == 201
    write(
        ch,
        site,
        {"v": 1, "ts": at(DAY0, "10:00:00"), "path": "/pricing"},
        {"v": 1, "ts": at(DAY0, "10:01:00"), "type": "Purchase", "revenue": ("10.50", "USD")},
        {"v": 2, "ts": at(DAY0, "11:00:00"), "type": "Purchase", "revenue": ("20", "USD")},
        {"v": 2, "ts": at(DAY0, "11:01:00"), "type": "Purchase", "revenue": ("5", "EUR")},
        {"v": 3, "ts": at(DAY0, "12:00:00"), "type": "Donation", "revenue": ("7.25", "EUR")},
        {"v": 4, "ts": at(DAY0, "13:00:00"), "type": "Signup", "revenue": ("100", "USD")},
    )
    return site


def usd(value: float, short: str, long: str) -> dict[str, Any]:
    return {"short": short, "value": value, "long": long, "currency": "USD"}


def test_by_goal_each_row_in_its_goals_currency_and_null_for_other_goals(
    app: TestClient, ch: Client
) -> None:
    site = seed(app, ch)
    answer = query_v2(app, site, metrics=["visitors", *BOTH], dimensions=["event:goal"])
    assert dict((d[0], m) for d, m in rows(answer)) == {
        # 10.50 + 20 USD (the 5 EUR purchase left out); average over those two.
        "Purchase": [2, usd(30.5, "$30.5", "$30.50"), usd(15.25, "$15.3", "$15.25")],
        "Donation": [
            1,
            *[{"short": "€7.3", "value": 7.25, "long": "€7.25", "currency": "EUR"}] * 2,
        ],
        "Signup": [1, None, None],
        "Visit /pricing": [1, None, None],
    }
    assert "metric_warnings" not in answer["meta"]


def test_a_single_currency_answers_totals_and_time_series(app: TestClient, ch: Client) -> None:
    site = seed(app, ch)
    purchase = [["is", "event:goal", ["Purchase"]]]
    answer = query_v2(app, site, metrics=BOTH, filters=purchase)
    assert rows(answer) == [([], [usd(30.5, "$30.5", "$30.50"), usd(15.25, "$15.3", "$15.25")])]
    hours = query_v2(
        app, site, metrics=["total_revenue"], filters=purchase, dimensions=["time:hour"]
    )
    assert [(d[0][11:13], m[0]["value"]) for d, m in rows(hours)] == [("10", 10.5), ("11", 20.0)]


def test_several_currencies_or_no_revenue_goal_give_null_and_a_warning(
    app: TestClient, ch: Client
) -> None:
    site = seed(app, ch)
    answer = query_v2(app, site, metrics=["visitors", *BOTH])
    assert rows(answer) == [([], [4, None, None])]
    assert answer["meta"]["metric_warnings"] == {m: NO_SINGLE for m in BOTH}
    signup = query_v2(app, site, metrics=BOTH, filters=[["is", "event:goal", ["Signup"]]])
    assert rows(signup) == [([], [None, None])]
    assert signup["meta"]["metric_warnings"] == {m: NO_GOALS for m in BOTH}
    bare = seed(app, ch, goals=False)
    nothing = query_v2(app, bare, metrics=["total_revenue"])
    assert nothing["meta"]["metric_warnings"] == {"total_revenue": NO_GOALS}


def seed_earlier(ch: Client, site: str) -> None:
    """The day before DAY0: Purchase 20 and 41 USD (61, average 30.50)."""
    before = DAY0 - dt.timedelta(days=1)
    write(
        ch,
        site,
        {"v": 5, "ts": at(before, "09:00:00"), "type": "Purchase", "revenue": ("20", "USD")},
        {"v": 6, "ts": at(before, "09:30:00"), "type": "Purchase", "revenue": ("41", "USD")},
    )


def eur(value: float, short: str, long: str) -> dict[str, Any]:
    return {"short": short, "value": value, "long": long, "currency": "EUR"}


def test_revenue_by_goal_compared_with_the_previous_period(app: TestClient, ch: Client) -> None:
    site = seed(app, ch)
    seed_earlier(ch, site)
    answer = query_v2(
        app, site, metrics=["visitors", *BOTH], dimensions=["event:goal"],
        include={"comparisons": {"mode": "previous_period"}},
    )  # fmt: skip
    got = {r["dimensions"][0]: (r["metrics"], r["comparison"]) for r in answer["results"]}
    assert got["Purchase"] == (
        [2, usd(30.5, "$30.5", "$30.50"), usd(15.25, "$15.3", "$15.25")],
        {
            "dimensions": ["Purchase"],
            "metrics": [2, usd(61.0, "$61.0", "$61.00"), usd(30.5, "$30.5", "$30.50")],
            # visitors 2 -> 2; 61 -> 30.50 and 30.50 -> 15.25 are both -50%
            "change": [0, -50, -50],
        },
    )
    # No donation the day before: the formatted zero in its currency, +100% from zero.
    assert got["Donation"][1] == {
        "dimensions": ["Donation"],
        "metrics": [0, eur(0.0, "€0.0", "€0.00"), eur(0.0, "€0.0", "€0.00")],
        "change": [100, 100, 100],
    }
    # Not a revenue goal: null revenue, compared or not, and no change.
    assert got["Signup"] == (
        [1, None, None],
        {"dimensions": ["Signup"], "metrics": [0, None, None], "change": [100, None, None]},
    )
    assert "metric_warnings" not in answer["meta"]


def test_revenue_compared_in_hitstreams_form_and_with_a_custom_range(
    app: TestClient, ch: Client
) -> None:
    site = seed(app, ch)
    seed_earlier(ch, site)
    purchase = [["is", "event:goal", ["Purchase"]]]
    before_day = query_v2(
        app, site, metrics=BOTH, filters=purchase, include={"compare": "previous_period"}
    )
    assert before_day["results"] == [{
        "dimensions": [],
        "metrics": [usd(30.5, "$30.5", "$30.50"), usd(15.25, "$15.3", "$15.25")],
        "comparison": {"dimensions": [],
                       "metrics": [usd(61.0, "$61.0", "$61.00"), usd(30.5, "$30.5", "$30.50")],
                       "change": [-50, -50]},
    }]  # fmt: skip
    # A year before: no purchase (raw events that old have expired): formatted zeros.
    yearly = query_v2(
        app, site, metrics=BOTH, filters=purchase, include={"compare": "year_over_year"}
    )
    zero = usd(0.0, "$0.0", "$0.00")
    assert yearly["results"][0]["comparison"] == {
        "dimensions": [], "metrics": [zero, zero], "change": [None, None]
    }  # fmt: skip
    # Days before against two empty days: formatted zeros, each bucket to its own.
    before, earliest = DAY0 - dt.timedelta(days=1), DAY0 - dt.timedelta(days=3)
    custom = query_v2(
        app, site, metrics=["total_revenue"], filters=purchase, dimensions=["time:day"],
        date_range=[before.isoformat(), DAY0.isoformat()],
        include={"comparisons": {"mode": "custom", "date_range": [
            earliest.isoformat(), (earliest + dt.timedelta(days=1)).isoformat()]}},
    )  # fmt: skip
    assert [(r["dimensions"], r["metrics"], r["comparison"]) for r in custom["results"]] == [
        ([before.isoformat()], [usd(61.0, "$61.0", "$61.00")],
         {"dimensions": [earliest.isoformat()], "metrics": [zero], "change": [100]}),
        ([DAY0.isoformat()], [usd(30.5, "$30.5", "$30.50")],
         {"dimensions": [(earliest + dt.timedelta(days=1)).isoformat()], "metrics": [zero],
          "change": [100]}),
    ]  # fmt: skip
    # Several currencies: null now, before and as a change, with the warning.
    mixed = query_v2(app, site, metrics=BOTH, include={"compare": "previous_period"})
    assert mixed["results"][0]["metrics"] == [None, None]
    assert mixed["results"][0]["comparison"]["metrics"] == [None, None]
    assert mixed["results"][0]["comparison"]["change"] == [None, None]
    assert mixed["meta"]["metric_warnings"] == {m: NO_SINGLE for m in BOTH}


def test_revenue_is_not_a_v1_metric(app: TestClient, ch: Client) -> None:
    site = seed(app, ch)
    v1 = app.get(
        "/api/v1/stats/aggregate",
        params={"site_id": site, "metrics": "total_revenue", "period": "day"},
        headers=AUTH,
    )
    assert v1.status_code == 400, v1.text


def test_money_formats_short_and_long_with_a_symbol_or_the_code() -> None:
    assert money(96336315, "USD") == usd(96336315.0, "$96.3M", "$96,336,315.00")
    assert money("1234.5", "EUR")["short"] == "€1.2K"
    assert money(None, "GBP") == {"short": "£0.0", "value": 0.0, "long": "£0.00", "currency": "GBP"}
    assert money("-12.345", "CHF")["long"] == "-CHF 12.35"
    assert money("999.96", "USD")["short"] == "$1.0K"


def test_csv_cells_are_the_amounts(app: TestClient, ch: Client) -> None:
    site = seed(app, ch)
    body = {"site_id": site, "date_range": RANGE, "metrics": BOTH, "format": "csv"}
    body["dimensions"] = ["event:goal"]
    answer = app.post("/api/v2/query", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert sorted(answer.text.splitlines()) == sorted(
        ["event:goal,total_revenue,average_revenue", "Purchase,30.5,15.25",
         "Donation,7.25,7.25", "Signup,,", "Visit /pricing,,"]
    )  # fmt: skip

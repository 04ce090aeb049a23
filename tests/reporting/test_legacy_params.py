"""The Stats API v1's parameters: periods as days, and each refusal in Plausible's words."""

from __future__ import annotations

import datetime as dt

import pytest

from foundation.http import APIError
from reporting import legacy_params as p

TODAY = dt.date(2024, 3, 15)
D = dt.date


def days(period: str, **params: str) -> tuple[dt.date, dt.date]:
    return p.days_of(period, params, TODAY)


def refusal(fn: object, *args: object) -> str:
    with pytest.raises(APIError) as caught:
        fn(*args)  # type: ignore[operator]
    assert caught.value.status_code == 400
    return caught.value.error


@pytest.mark.parametrize(
    ("period", "params", "expected"),
    [
        ("day", {}, (D(2024, 3, 15), D(2024, 3, 15))),
        ("day", {"date": "2024-01-02"}, (D(2024, 1, 2), D(2024, 1, 2))),
        ("day", {"date": "today"}, (TODAY, TODAY)),
        # n whole days ending the day before `date` (Plausible's current rule, S2)
        ("7d", {}, (D(2024, 3, 8), D(2024, 3, 14))),
        ("30d", {"date": "2024-03-01"}, (D(2024, 1, 31), D(2024, 2, 29))),
        ("28d", {}, (D(2024, 2, 16), D(2024, 3, 14))),
        ("90d", {"date": "2024-03-01"}, (D(2023, 12, 2), D(2024, 2, 29))),
        ("month", {}, (D(2024, 3, 1), D(2024, 3, 31))),
        ("6mo", {}, (D(2023, 10, 1), D(2024, 3, 31))),
        ("12mo", {"date": "2024-01-20"}, (D(2023, 2, 1), D(2024, 1, 31))),
        ("custom", {"date": "2024-01-01, 2024-01-31"}, (D(2024, 1, 1), D(2024, 1, 31))),
    ],
)
def test_periods_as_days(period: str, params: dict[str, str], expected: tuple[D, D]) -> None:
    assert days(period, **params) == expected


def test_the_period_defaults_to_30d_and_is_checked() -> None:
    assert p.period_of({}) == "30d"
    assert refusal(p.period_of, {"period": "all"}) == (
        "Error parsing `period` parameter: invalid period `all`. Please find accepted values "
        "in our docs: https://plausible.io/docs/stats-api#time-periods"
    )


@pytest.mark.parametrize(
    ("period", "date", "message"),
    [
        ("custom", None, "The `date` parameter is required when using a custom period. See "
         "https://plausible.io/docs/stats-api#time-periods"),
        ("custom", "2024-01-01", "Invalid format for `date` parameter. When using a custom "
         "period, please include two ISO-8601 formatted dates joined by a comma. See "
         "https://plausible.io/docs/stats-api#time-periods"),
        ("custom", "2024-01-01,2024-02-30", "Invalid format for `date` parameter. When using "
         "a custom period, please include two ISO-8601 formatted dates joined by a comma. "
         "See https://plausible.io/docs/stats-api#time-periods"),
        ("day", "yesterday", "Error parsing `date` parameter: invalid_format. Please specify "
         "a valid date in ISO-8601 format."),
        ("7d", "2024-02-30", "Error parsing `date` parameter: invalid_date. Please specify a "
         "valid date in ISO-8601 format."),
    ],
)  # fmt: skip
def test_bad_dates(period: str, date: str | None, message: str) -> None:
    params = {} if date is None else {"date": date}
    assert refusal(p.days_of, period, params, TODAY) == message


def test_a_range_out_of_order_or_of_bounds_is_refused() -> None:
    assert refusal(p.days_of, "custom", {"date": "2024-02-01,2024-01-01"}, TODAY).startswith(
        "Error parsing `date` parameter: invalid_date."
    )
    assert refusal(p.days_of, "7d", {"date": "1970-01-03"}, TODAY).startswith("Error parsing")


def test_intervals() -> None:
    assert p.interval_of({}, "day") == "hour"
    assert p.interval_of({}, "7d") == "day"
    assert p.interval_of({}, "custom") == "day"
    assert p.interval_of({}, "12mo") == "month"
    assert p.interval_of({"interval": "date"}, "6mo") == "day"
    assert p.interval_of({"interval": "month"}, "30d") == "month"
    assert refusal(p.interval_of, {"interval": "week"}, "7d") == (
        "Error parsing `interval` parameter: invalid interval `week`. Valid intervals are "
        "`day`, `month`"
    )


def test_properties() -> None:
    for prop in ("event:page", "event:name", "visit:source", "visit:browser_version",
                 "event:props:plan"):  # fmt: skip
        assert p.property_of({"property": prop}) == prop
    assert refusal(p.property_of, {}) == (
        "The `property` parameter is required. Please provide at least one property to show "
        "a breakdown by."
    )
    assert refusal(p.property_of, {"property": "event:hostname"}) == (
        "Property 'event:hostname' is currently not supported for breakdowns.  Please provide "
        "a valid property for the breakdown endpoint: https://plausible.io/docs/stats-api#properties"
    )
    assert p.property_of({"property": "event:goal"}) == "event:goal"
    assert refusal(p.property_of, {"property": "visit:city"}) == (
        "visit:city is a GeoNames id, which hitstream's city database does not have: use "
        "visit:city_name (or visit:region, visit:region_name)"
    )
    for unknown in ("event:props:", "nope"):
        assert refusal(p.property_of, {"property": unknown}) == (
            f"Invalid property '{unknown}'. Please provide a valid property for the breakdown "
            "endpoint: https://plausible.io/docs/stats-api#properties"
        )


def test_metrics() -> None:
    assert p.metrics_of({}, []) == ["visitors"]
    assert p.metrics_of({"metrics": "visitors, bounce_rate"}, ["visit:source"]) == [
        "visitors",
        "bounce_rate",
    ]
    assert p.metrics_of({"metrics": "visits"}, [], "event:page") == ["visits"]
    rate = {"metrics": "visitors,conversion_rate"}
    assert p.metrics_of(rate, ["event:goal"]) == p.metrics_of(rate, [], "event:goal")


def test_conversion_rate_is_per_group_but_by_goal_or_property() -> None:
    metrics = ["visitors", "conversion_rate"]
    assert p.v2_metrics(metrics, per_group=False) == metrics
    assert p.v2_metrics(metrics, per_group=True) == ["visitors", "group_conversion_rate"]
    assert [p.per_group(b) for b in ("visit:source", "event:page", "event:goal")] == [
        True, True, False,
    ]  # fmt: skip
    assert not p.per_group("event:props:plan")


@pytest.mark.parametrize(
    ("metrics", "filtered", "breakdown", "message"),
    [
        ("visitors,visitors", [], None, "Metrics cannot be queried multiple times."),
        ("time_on_page", [], None, "The metric `time_on_page` is not recognized. Find valid "
         "metrics from the documentation: https://plausible.io/docs/stats-api#metrics"),
        ("visitors,conversion_rate", ["visit:source"], "event:page", "Metric `conversion_rate` "
         "can only be queried in a goal breakdown or with a goal filter"),
        ("bounce_rate", ["event:goal"], None,
         "Session metric `bounce_rate` cannot be queried when using a filter on `event:goal`."),
        ("visits", [], "event:goal",
         "Session metric `visits` cannot be queried for breakdown by `event:goal`."),
        # metric by metric, in the order given (Plausible's)
        ("bounce_rate,views_per_visit", [], "event:name",
         "Session metric `bounce_rate` cannot be queried for breakdown by `event:name`."),
        ("views_per_visit", ["event:page"], None,
         "Metric `views_per_visit` cannot be queried with a filter on `event:page`."),
        ("views_per_visit", [], "visit:source",
         "Metric `views_per_visit` is not supported in breakdown queries."),
        ("visitors,bounce_rate", [], "event:props:plan",
         "Session metric `bounce_rate` cannot be queried for breakdown by `event:props:plan`."),
        ("visits", [], "event:name",
         "Session metric `visits` cannot be queried for breakdown by `event:name`."),
        ("visit_duration", [], "event:page",
         "Session metric `visit_duration` cannot be queried for breakdown by `event:page`."),
        ("bounce_rate", ["visit:source", "event:name"], None,
         "Session metric `bounce_rate` cannot be queried when using a filter on `event:name`."),
    ],
)  # fmt: skip
def test_metric_refusals(
    metrics: str, filtered: list[str], breakdown: str | None, message: str
) -> None:
    assert refusal(p.metrics_of, {"metrics": metrics}, filtered, breakdown) == message


def test_limit_and_page() -> None:
    assert (p.limit_of({}), p.page_of({})) == (100, 1)
    assert (p.limit_of({"limit": "1000"}), p.page_of({"page": "7"})) == (1000, 7)
    for limit in ("0", "1001", "ten", "1.5", ""):
        assert refusal(p.limit_of, {"limit": limit}) == (
            "Please provide limit as a number between 1 and 1000."
        )
    for page in ("0", "-1", "x"):
        assert refusal(p.page_of, {"page": page}) == "Please provide page as a positive number."


@pytest.mark.parametrize(
    ("period", "date"), [("7d", "0001-01-01"), ("12mo", "0001-03-01"), ("month", "9999-12-05")]
)
def test_a_period_past_the_calendars_ends_is_a_400(period: str, date: str) -> None:
    with pytest.raises(APIError) as refused:
        p.days_of(period, {"date": date}, dt.date(2026, 12, 7))
    assert refused.value.status_code == 400
    assert "invalid_date" in str(refused.value)

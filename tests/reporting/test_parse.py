"""The query body's meaning checked into a Query, with no engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from reporting.model import Condition, DateRange, QueryError
from reporting.parse import FIRST_MOMENT, explicit_range, parse
from schemas.query import QueryBody


def parsed(**body: Any) -> Any:
    return parse(QueryBody.model_validate({"site_id": "s", "date_range": "7d", **body}))


def fault(**body: Any) -> str:
    with pytest.raises(QueryError) as caught:
        parsed(**body)
    return caught.value.field


def test_defaults_order_by_time_then_the_first_metric() -> None:
    query = parsed(metrics=["visits", "visitors"], dimensions=["visit:source", "time:day"])
    assert query.order_by == (("time:day", "asc"), ("visits", "desc"))
    assert query.time_dimension == "time:day" and query.event_dimensions == ()
    assert query.date_range == DateRange(keyword="7d")


def test_an_explicit_order_is_kept() -> None:
    query = parsed(
        metrics=["visitors"], dimensions=["event:page"], order_by=[["event:page", "asc"]]
    )
    assert query.order_by == (("event:page", "asc"),)
    assert query.event_dimensions == ("event:page",)


def test_filters_are_parsed() -> None:
    query = parsed(metrics=["visitors"], filters=[["is_not", "event:page", ["/a"]]])
    assert query.filters == (Condition("is", "event:page", ("/a",), negated=True),)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metrics": ["nope"]}, "metrics[0]"),
        ({"metrics": ["visitors", "visitors"]}, "metrics"),
        ({"metrics": ["visitors"], "dimensions": ["visit:os", "visit:os"]}, "dimensions"),
        ({"metrics": ["visitors"], "dimensions": ["time", "time:day"]}, "dimensions"),
        ({"metrics": ["visitors", "bounce_rate"], "dimensions": ["event:page"]}, "metrics[1]"),
        ({"metrics": ["percentage"]}, "metrics[0]"),
        ({"metrics": ["visitors"], "order_by": [["visits", "asc"]]}, "order_by[0]"),
        ({"metrics": ["visitors"], "order_by": [["visitors", "up"]]}, "order_by[0]"),
        ({"metrics": ["visitors"], "include": {"time_labels": True}}, "include.time_labels"),
        ({"metrics": ["visitors"], "date_range": "fortnight"}, "date_range"),
        ({"metrics": ["visitors"], "date_range": ["2024-01-01"]}, "date_range"),
        ({"metrics": ["visitors"], "filters": [["is", "time", ["x"]]]}, "filters[0][1]"),
    ],
)  # fmt: skip
def test_each_fault_names_its_part(body: dict[str, Any], field: str) -> None:
    assert fault(**body) == field


@pytest.mark.parametrize("days", ["1d", "90d", "5000d"])
def test_any_number_of_days_is_a_range(days: str) -> None:
    assert parsed(metrics=["visitors"], date_range=days).date_range == DateRange(keyword=days)


@pytest.mark.parametrize("days", ["0d", "5001d", "07d", "-1d", "1.5d"])
def test_days_outside_plausibles_bounds_are_refused(days: str) -> None:
    assert fault(metrics=["visitors"], date_range=days) == "date_range"


def test_the_date_range_is_checked_before_the_metrics() -> None:
    assert fault(metrics=["nope"], date_range="fortnight") == "date_range"


def test_explicit_ranges() -> None:
    names = ("from", "to")
    days = explicit_range("2024-01-01", "2024-01-31", names, "range")
    assert (days.first, days.last) == (dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    moments = explicit_range("2024-01-01T10:00:00+02:00", "2024-01-01T12:00:00Z", names, "range")
    assert moments.first == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    for first, last, field in [
        ("2024-01-02", "2024-01-01", "range"),
        ("2024-01-01", "2024-01-01T00:00:00Z", "range"),
        ("2024-01-01T00:00:00", "2024-01-02T00:00:00Z", "from"),
        ("1970-01-01", "2024-01-01", "from"),
        ("2024-01-01", "tomorrow", "to"),
    ]:
        with pytest.raises(QueryError) as caught:
            explicit_range(first, last, names, "range")
        assert caught.value.field == field
    assert FIRST_MOMENT.date() == dt.date(1970, 1, 2)

"""v2 answers reshaped as the Stats API v1 answers them (no engine)."""

from __future__ import annotations

from typing import Any

import pytest

from reporting import legacy_shape as shape


def v2(*rows: tuple[list[str], list[Any]]) -> dict[str, Any]:
    return {"results": [{"dimensions": d, "metrics": m} for d, m in rows]}


def test_aggregate_rounds_rates_and_durations_half_up() -> None:
    metrics = ["visitors", "bounce_rate", "visit_duration", "views_per_visit"]
    now = shape.totals(v2(([], [3, 42.5, 1199.5, 1.75])), metrics)
    assert now == {
        "visitors": 3,
        "bounce_rate": 43,
        "visit_duration": 1200,
        "views_per_visit": 1.75,
    }
    assert shape.aggregate(now) == {
        "results": {
            "visitors": {"value": 3},
            "bounce_rate": {"value": 43},
            "visit_duration": {"value": 1200},
            "views_per_visit": {"value": 1.75},
        }
    }


def test_aggregate_of_nothing_is_zeros() -> None:
    assert shape.totals(v2(), ["visitors", "pageviews"]) == {"visitors": 0, "pageviews": 0}


def test_comparison() -> None:
    now = {"visitors": 30, "bounce_rate": 40, "pageviews": 5}
    before = {"visitors": 20, "bounce_rate": 0, "pageviews": 0}
    assert shape.aggregate(now, before)["results"] == {
        "visitors": {"value": 30, "comparison_value": 20, "change": 50},
        "bounce_rate": {"value": 40, "comparison_value": 0, "change": None},
        "pageviews": {"value": 5, "comparison_value": 0, "change": 100},
    }


@pytest.mark.parametrize(
    ("metric", "now", "before", "change"),
    [
        ("visitors", 0, 0, 0),
        ("visitors", 1, 3, -67),
        ("visitors", 3, 2, 50),
        ("visitors", 5, 8, -38),  # -37.5 rounds away from zero
        ("bounce_rate", 30, 45, -15),
        ("bounce_rate", 30, 0, None),
        ("visit_duration", None, 3, None),
    ],
)
def test_change(metric: str, now: float | None, before: float | None, change: float | None) -> None:
    assert shape.change(metric, now, before) == change


def test_timeseries_has_every_bucket_empty_ones_as_plausible_fills_them() -> None:
    metrics = ["visitors", "bounce_rate", "visit_duration", "views_per_visit", "visits"]
    answer = v2((["2024-01-02"], [2, 66.67, 30.0, 1.5, 2]))
    labels = ["2024-01-01", "2024-01-02", "2024-01-03"]
    empty = {"visitors": 0, "bounce_rate": 0, "visit_duration": None, "views_per_visit": 0.0,
             "visits": 0}  # fmt: skip
    assert shape.timeseries([(answer, metrics)], metrics, labels)["results"] == [
        {"date": "2024-01-01", **empty},
        {"date": "2024-01-02", "visitors": 2, "bounce_rate": 67, "visit_duration": 30,
         "views_per_visit": 1.5, "visits": 2},
        {"date": "2024-01-03", **empty},
    ]  # fmt: skip
    shaped = shape.timeseries([(answer, metrics)], metrics, labels)["results"]
    assert [type(r["bounce_rate"]) for r in shaped] == [int, int, int]


def test_breakdown_rows_are_keyed_by_the_last_name_part() -> None:
    assert shape.row_key("event:page") == "page"
    assert shape.row_key("visit:source") == "source"
    assert shape.row_key("event:props:plan") == "plan"
    assert shape.dimensions_of("visit:browser_version") == [
        "visit:browser",
        "visit:browser_version",
    ]
    assert shape.dimensions_of("visit:os_version") == ["visit:os", "visit:os_version"]
    dims = shape.dimensions_of("visit:browser_version")
    answer = v2((["Chrome", "120.0"], [4, 5]))
    assert shape.breakdown(answer, dims, ["visitors", "pageviews"]) == {
        "results": [
            {"browser": "Chrome", "browser_version": "120.0", "visitors": 4, "pageviews": 5}
        ]
    }


def test_a_time_series_in_two_parts() -> None:
    metrics = ["visitors", "bounce_rate", "pageviews", "visit_duration"]
    assert shape.split(metrics) == [["visitors", "pageviews"], ["bounce_rate", "visit_duration"]]
    assert shape.split(["visits"]) == [["visits"]]
    events = v2((["d1"], [2, 5]), (["d2"], [1, 1]))
    visits = v2((["d1"], [49.5, 30.4]))  # d2: events of a visit begun in d1
    parts = [(events, ["visitors", "pageviews"]), (visits, ["bounce_rate", "visit_duration"])]
    assert shape.timeseries(parts, metrics, ["d0", "d1", "d2"])["results"] == [
        {"date": "d0", "visitors": 0, "bounce_rate": 0, "pageviews": 0, "visit_duration": None},
        {"date": "d1", "visitors": 2, "bounce_rate": 50, "pageviews": 5, "visit_duration": 30},
        {"date": "d2", "visitors": 1, "bounce_rate": 0, "pageviews": 1, "visit_duration": 0},
    ]

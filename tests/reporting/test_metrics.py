"""Metric aggregates from their templates, percentage's total as a parameter (no engine)."""

from __future__ import annotations

from reporting.metrics import aggregate
from reporting.tables import Tables

EVENTS = Tables(None, event_rows=True, visit_rows=True)
VISITS = Tables(None, event_rows=False, visit_rows=True)


def test_counts_come_from_the_rows_that_count_them() -> None:
    assert aggregate("pageviews", EVENTS, False, "") == "sumIf(pageviews, kind = 0)"
    assert aggregate("pageviews", VISITS, False, "") == "sumIf(pageviews, kind = 1)"
    assert aggregate("users", VISITS, False, "") == "uniqExactIf(user, kind = 1 AND user != '')"


def test_visit_metrics_always_read_visit_rows() -> None:
    assert aggregate("visits", EVENTS, False, "") == "countIf(kind = 1)"
    assert aggregate("visit_duration", EVENTS, False, "") == (
        "if(countIf(kind = 1) = 0, 0, round(avgIf(dur, kind = 1) / 1000))"
    )


def test_visits_of_an_event_breakdown_are_the_events_distinct_visits() -> None:
    assert aggregate("visits", EVENTS, True, "") == (
        "uniqExactIf((visitor_id, session_id), kind = 0 AND session_id != 0)"
    )
    assert aggregate("visitors", EVENTS, True, "") == (
        "uniqExactIf(visitor_id, kind = 0 AND visitor_id != 0)"
    )


def test_percentage_divides_by_the_visitors_of_the_rows_counted() -> None:
    total = "(SELECT uniqExactIf(visitor_id, visitor_id != 0) FROM ev WHERE {p0:String})"
    assert aggregate("percentage", EVENTS, False, "ev WHERE {p0:String}") == (
        f"if({total} = 0, 0, "
        f"round(100 * uniqExactIf(visitor_id, kind = 0 AND visitor_id != 0) / {total}, 2))"
    )

"""Grouped rows from a daily aggregate table (no engine)."""

from __future__ import annotations

from reporting.daily import grouped
from reporting.model import DateRange, Query

WHERE = (
    "WHERE site_id = {site_id:String} AND event_type != {engagement:String}\n"
    "  AND day >= toDate({t0:DateTime64(3, 'UTC')}) AND day < toDate({t1:DateTime64(3, 'UTC')})"
)


def test_totals() -> None:
    query = Query("s", DateRange("7d"), ("events", "visitors"))
    assert grouped(query, "daily_totals", None) == (
        "SELECT sum(views) AS m0, uniqExactMerge(visitors) AS m1\nFROM daily_totals\n" + WHERE
    )


def test_a_weekly_series() -> None:
    query = Query("s", DateRange("7d"), ("pageviews",), ("time:week",))
    assert grouped(query, "daily_totals", "week") == (
        "SELECT toMonday(day) AS r0, formatDateTime(r0, '%Y-%m-%d', {tz:String}) AS d0, "
        "sumIf(views, event_type IN {pageviews:Array(String)}) AS m0\nFROM daily_totals\n"
        + WHERE
        + "\nGROUP BY r0"
    )


def test_a_page_breakdown_adds_the_numbered_visitors_to_the_others() -> None:
    query = Query("s", DateRange("7d"), ("visitors",), ("event:page",))
    assert grouped(query, "daily_pages", None).startswith(
        "SELECT path AS r0, if(r0 = '', '(not set)', toString(r0)) AS d0, "
        "groupBitmapMerge(numbered) + uniqExactMerge(visitors) AS m0\nFROM daily_pages\n"
    )

"""The compiled SELECT: its stages put together, the order, the page (no engine)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from reporting.compiler import compile_query, ordered, paged, parameters, selected
from reporting.model import Condition, DateRange, Query
from reporting.periods import Period
from reporting.sources import with_clause
from schemas.query import Include, Pagination

DAYS = Period(
    dt.datetime(2024, 5, 1, tzinfo=dt.UTC), dt.datetime(2024, 5, 8, tzinfo=dt.UTC), ZoneInfo("UTC")
)


def test_every_query_binds_the_site_range_and_event_types() -> None:
    bound = parameters(Query("s", DateRange("7d"), ("visitors",)), DAYS)
    assert bound["site_id"] == "s" and bound["tz"] == "UTC"
    assert bound["t0_ms"] == 1714521600000 and bound["t1_ms"] == 1715126400000
    assert {"t0", "t1", "engagement", "pageviews"} <= bound.keys()


def test_the_daily_shortcut_is_taken_before_anything_else_is_built() -> None:
    query = Query(
        "s", DateRange("7d"), ("visitors",), ("event:name",), order_by=(("visitors", "desc"),)
    )
    compiled = compile_query(query, DAYS, None, 10)
    # It reads none of the common table expressions, so it carries none.
    assert compiled.sql.startswith("SELECT d0, m0\nFROM (SELECT event_type AS r0")
    assert "FROM daily_totals" in compiled.sql and not compiled.reads_raw_events
    assert compiled.sql.endswith("\nORDER BY m0 DESC, d0 ASC\nLIMIT 10 OFFSET 0")
    assert compiled.columns == ["event:name", "visitors"]
    assert compiled.parameters == parameters(query, DAYS)


def test_raw_rows_with_filters_dimensions_and_filled_buckets() -> None:
    query = Query(
        "s",
        DateRange("7d"),
        ("visitors", "percentage"),
        ("time:day",),
        (Condition("is", "visit:source", ("goo",)),),
        order_by=(("time:day", "asc"),),
    )
    compiled = compile_query(query, DAYS, "day", None, ["2024-05-01", "2024-05-02"])
    sql, bound = compiled.sql, compiled.parameters
    base = parameters(query, DAYS)
    # Values are bound after the parameters every query binds, filters first.
    assert {k: v for k, v in bound.items() if k not in base} == {
        "p8": ["goo"],
        "p9": ["2024-05-01", "2024-05-02"],
    }
    assert "SELECT 0 AS kind, toDate(ts, {tz:String}) AS r0" in sql
    assert "FROM joined WHERE (v_source IN {p8:Array(String)})" in sql
    body = sql[sql.index(")\nSELECT ") + 2 :]
    assert sql == with_clause(body) + "\n" + body and "FROM visits" not in body
    total = "(SELECT uniqExactIf(visitor_id, visitor_id != 0) FROM joined WHERE (v_source IN"
    assert sql.count(total) == 2  # percentage's denominator, tested for zero first
    assert "\nGROUP BY r0" in sql and compiled.reads_raw_events
    assert "SELECT l.d0 AS d0, r.m0 AS m0, r.m1 AS m1 FROM " in sql
    assert "(SELECT arrayJoin({p9:Array(String)}) AS d0) AS l LEFT JOIN (" in sql
    assert sql.endswith("\nORDER BY d0 ASC")


def test_the_outer_select_order_and_page() -> None:
    query = Query(
        "s",
        DateRange("7d"),
        ("visits", "visitors"),
        ("visit:os", "visit:browser"),
        order_by=(("visitors", "desc"), ("visit:browser", "desc")),
        include=Include(total_rows=True),
        pagination=Pagination(offset=20),
    )
    assert selected(query) == ["d0", "d1", "m0", "m1", "count() OVER () AS total_rows"]
    assert ordered(query) == "\nORDER BY m1 DESC, d1 DESC, d0 ASC"
    assert paged(query, 5) == "\nLIMIT 5 OFFSET 20"
    assert paged(query, None) == "\nOFFSET 20"
    assert paged(Query("s", DateRange("7d"), ("visits",)), None) == ""

"""Planning a query (no engine): its buckets, its comparison, what raw retention allows."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from reporting import answer
from reporting.model import DateRange, Query, QueryError
from schemas.query import Include

UTC = ZoneInfo("UTC")
NOW = dt.datetime(2024, 5, 10, 12, tzinfo=dt.UTC)
WEEK = DateRange(first=dt.date(2024, 5, 1), last=dt.date(2024, 5, 7))


def test_a_time_dimension_gets_its_bucket_and_every_label() -> None:
    query = Query("s", WEEK, ("visitors",), ("visit:os", "time"))
    planned = answer.plan(query, UTC, NOW)
    assert planned.bucket == "day" and planned.buckets is not None
    assert planned.buckets[0] == "2024-05-01" and len(planned.buckets) == 7
    assert planned.earlier is None


def test_the_compared_period_is_planned_with_the_query() -> None:
    query = Query("s", WEEK, ("visitors",), include=Include(compare="previous_period"))
    earlier = answer.plan(query, UTC, NOW).earlier
    assert earlier is not None and earlier.end == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def test_expired_raw_events_refuse_only_queries_that_need_them() -> None:
    aggregated = Query("s", WEEK, ("visitors",))
    assert answer.plan(aggregated, UTC, NOW, raw_ttl_days=3).compiled.reads_raw_events is False
    visits = Query("s", WEEK, ("visits",), ("visit:os",))  # visits are kept too
    answer.plan(visits, ZoneInfo("Asia/Tokyo"), NOW, raw_ttl_days=3)
    with pytest.raises(QueryError) as caught:
        answer.plan(
            Query("s", WEEK, ("visitors",), ("event:page",)),
            ZoneInfo("Asia/Tokyo"),
            NOW,
            raw_ttl_days=3,
        )
    assert caught.value.field == "date_range"

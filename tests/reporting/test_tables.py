"""Which tables answer a query, decided before any SQL is built (no engine)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from reporting import daily
from reporting.model import Condition, DateRange, Filter, Logic, Query
from reporting.periods import Period
from reporting.tables import AGGREGATES, DAILY_BUCKETS, Tables, daily_table, decide, uses

UTC = ZoneInfo("UTC")
DAYS = Period(dt.datetime(2024, 5, 1, tzinfo=dt.UTC), dt.datetime(2024, 5, 8, tzinfo=dt.UTC), UTC)
PAGE = Condition("is", "event:page", ("/",))
SOURCE = Condition("is", "visit:source", ("goo",))


def query(metrics: tuple[str, ...], dimensions: tuple[str, ...] = (), *filters: Filter) -> Query:
    return Query("s", DateRange("7d"), metrics, dimensions, filters)


@pytest.mark.parametrize(
    ("metrics", "dimensions", "bucket", "table"),
    [
        (("visitors", "users", "pageviews", "events"), (), None, "daily_totals"),
        (("visitors",), ("time:week",), "week", "daily_totals"),
        (("events",), ("event:name",), None, "daily_totals"),
        (("visitors", "pageviews"), ("event:page",), None, "daily_pages"),
        (("users",), ("event:page",), None, None),  # daily_pages holds no users
        (("visits",), (), None, None),
        (("visitors",), ("time:hour",), "hour", None),
        (("visitors",), ("visit:source",), None, "daily_visits"),
        (("visitors", "visits"), ("visit:source",), None, None),  # daily_visits: visitors
        (("visitors",), ("visit:exit_page",), None, None),  # the last event's: sessions
        (("visitors",), ("event:page", "event:name"), None, None),
    ],
)
def test_the_daily_aggregate_answers_when_it_holds_the_whole_answer(
    metrics: tuple[str, ...], dimensions: tuple[str, ...], bucket: str | None, table: str | None
) -> None:
    assert daily_table(query(metrics, dimensions), DAYS, bucket) == table


def test_the_daily_aggregate_needs_whole_utc_days_and_no_filters() -> None:
    berlin = Period(DAYS.start, DAYS.end, ZoneInfo("Europe/Berlin"))
    partial = Period(DAYS.start, DAYS.end - dt.timedelta(hours=1), UTC)
    assert daily_table(query(("visitors",)), berlin, None) is None
    assert daily_table(query(("visitors",)), partial, None) is None
    assert daily_table(query(("visitors",), (), PAGE), DAYS, None) is None


def test_decided_daily_reads_nothing_else() -> None:
    tables = decide(query(("visitors",)), DAYS, None)
    assert tables == Tables(daily="daily_totals")
    assert not tables.reads_raw_events


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # Visit counts alone: visit rows.
        (query(("visits",), ("visit:source",)), Tables(None, False, True, "joined", False)),
        # An event breakdown: event rows only.
        (query(("visitors", "visits"), ("event:page",)), Tables(None, True, False, "ev", False)),
        # Over time: event rows count visitors, visit rows count visits.
        (query(("visitors", "bounce_rate"), ("time:hour",)), Tables(None, True, True, "ev", False)),
        # An event filter makes event rows, with their visit's dimensions if filtered on.
        (query(("visits",), (), PAGE, SOURCE), Tables(None, False, True, "joined", True)),
        (query(("visitors",), (), Logic("not", (PAGE,))), Tables(None, True, False, "ev", True)),
    ],
)
def test_which_rows_feed_the_group_by(q: Query, expected: Tables) -> None:
    bucket = "hour" if q.time_dimension else None
    assert decide(q, DAYS, bucket) == expected


def test_which_rows_count_and_whether_raw_events_are_read() -> None:
    visits = Tables(None, False, True, "ev", False)
    assert visits.kind == "1" and not visits.reads_raw_events
    assert Tables(None, False, True, "ev", True).reads_raw_events
    assert Tables(None, True, False, "ev", False).kind == "0"


def test_uses_looks_into_logic_filters() -> None:
    nested = (Logic("or", (Logic("not", (SOURCE,)),)),)
    assert uses(nested, visit=True) and not uses(nested, visit=False)
    assert uses((PAGE,), visit=False) and not uses((PAGE,), visit=True)


def test_the_daily_sql_has_every_metric_and_bucket_the_decider_allows() -> None:
    for _, held in AGGREGATES.values():
        assert held <= daily.METRICS.keys()
    assert daily.BUCKETS.keys() == DAILY_BUCKETS

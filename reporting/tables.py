"""Which tables answer a query, decided before any SQL is built: a daily aggregate
alone when it holds the whole answer, else which rows feed the GROUP BY: matching events
(kind 0: counted where and when they happened) and matching visits (kind 1: counted once,
in the bucket where they started)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reporting.daily import VISIT_VALUES
from reporting.model import Filter, Logic, Query
from reporting.periods import Period
from schemas.query import (
    CONVERSION_METRICS,
    REVENUE_METRICS,
    SESSION_METRICS,
    TIME_DIMENSIONS,
    VISIT_DIMENSIONS,
    is_event_dimension,
)

# Metrics counted from events; the others from visits.
EVENT_ROW_METRICS = frozenset(
    {
        "visitors",
        "pageviews",
        "events",
        "users",
        "percentage",
        *CONVERSION_METRICS,
        *REVENUE_METRICS,
    }
)
# Metrics the daily aggregates hold exactly (the same uniqExact states, summed views).
DAILY_METRICS = frozenset({"visitors", "users", "pageviews", "events"})
# Time buckets made of whole days.
DAILY_BUCKETS = frozenset({"day", "week", "month"})
# The aggregate table answering each breakdown (None: totals or a time series alone) and
# the metrics it holds: daily_totals per event type, daily_pages per event type and path,
# daily_visits the visitors per visit dimension and value (reporting/daily.py says which).
AGGREGATES: dict[str | None, tuple[str, frozenset[str]]] = {
    None: ("daily_totals", DAILY_METRICS),
    "event:name": ("daily_totals", DAILY_METRICS),
    "event:page": ("daily_pages", frozenset({"visitors", "pageviews", "events"})),
    **{name: ("daily_visits", frozenset({"visitors"})) for name in VISIT_VALUES},
}


@dataclass(frozen=True)
class Tables:
    """What a query reads: a daily aggregate alone, or event rows and/or visit rows."""

    daily: str | None = None  # the aggregate table answering alone
    event_rows: bool = False
    visit_rows: bool = False
    # Event rows need their visit's dimensions ("joined") when those are grouped or
    # filtered on; else the events alone ("ev").
    events_from: str = "ev"
    event_filters: bool = False  # some filter is on an event dimension

    @property
    def kind(self) -> str:
        """The kind of rows that count visitors, page views, events and users."""
        return "0" if self.event_rows else "1"

    @property
    def reads_raw_events(self) -> bool:
        return self.daily is None and (self.event_rows or self.event_filters)


def decide(query: Query, period: Period, bucket: str | None) -> Tables:
    """The tables answering `query` over `period` (`bucket`: its time dimension's)."""
    daily = daily_table(query, period, bucket)
    if daily is not None:
        return Tables(daily=daily)
    metrics = set(query.metrics)
    event_filters = uses(query.filters, visit=False)
    visit_filters = uses(query.filters, visit=True)
    if query.event_dimensions:
        event_rows, visit_rows = True, False
    elif query.time_dimension or event_filters or metrics & set(REVENUE_METRICS):
        event_rows = bool(metrics & EVENT_ROW_METRICS)
        visit_rows = bool(metrics & {"visits", *SESSION_METRICS})
    else:
        event_rows, visit_rows = False, True
    visit_dimensions = any(d in VISIT_DIMENSIONS for d in query.dimensions)
    events_from = "joined" if visit_dimensions or visit_filters else "ev"
    return Tables(None, event_rows, visit_rows, events_from, event_filters)


def daily_table(query: Query, period: Period, bucket: str | None) -> str | None:
    """The daily aggregate holding the whole answer, if one does: no filters, whole UTC
    days, at most one dimension (a day/week/month time bucket, the event name, the page
    or a visit dimension daily_visits holds) and metrics that table holds. It reads a
    few rows per day instead of every event (and outlives raw retention)."""
    if query.filters or len(query.dimensions) > 1:
        return None
    if period.tz.key not in ("UTC", "Etc/UTC") or not all(
        moment.astimezone(dt.UTC).time() == dt.time(0) for moment in (period.start, period.end)
    ):
        return None
    dimension = query.dimensions[0] if query.dimensions else None
    time = dimension in TIME_DIMENSIONS
    if time and bucket not in DAILY_BUCKETS:
        return None
    table, held = AGGREGATES.get(None if time else dimension, ("", frozenset()))
    return table if held.issuperset(query.metrics) else None


def uses(filters: tuple[Filter, ...], visit: bool) -> bool:
    """Whether any filter is on a visit dimension (visit) or an event one (not visit)."""
    for item in filters:
        if isinstance(item, Logic):
            if uses(item.items, visit):
                return True
        elif is_event_dimension(item.dimension) != visit:
            return True
    return False

"""A stats query as one ClickHouse SELECT over raw events and stored visits.

Visits are told at ingest (ingest/stream.py: a visitor's events with no gap of 30
minutes or more) and kept one row per visit in `sessions` (migration 0012). Two kinds of
rows feed the final GROUP BY: matching events (kind 0: counted where and when they
happened) and matching visits (kind 1: counted once, in the bucket where they started).
A visit matches when its dimensions match the visit filters and, if there are event
filters, at least one of its events matches them. A visit's dimensions are those of the
event that opened it; its exit page is that of its last event. Values are bound as
parameters; names (columns, functions, formats) come from the tables here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from reporting.filters import pattern_as_run
from reporting.model import Condition, Filter, Logic, Query
from reporting.periods import Period
from schemas.event import ENGAGEMENT, PAGEVIEWS, clickhouse_time, epoch_ms
from schemas.query import (
    EVENT_DIMENSIONS,
    PROPS_PREFIX,
    SESSION_METRICS,
    TIME_DIMENSIONS,
    VISIT_DIMENSIONS,
    is_event_dimension,
)

# What a breakdown shows for an empty value, as Plausible's API does; a filter clause
# naming it matches the empty value.
DIRECT = "Direct / None"
NOT_SET = "(not set)"


def empty_label(dimension: str) -> str:
    """The label of a dimension's empty value in results."""
    return DIRECT if dimension == "visit:source" else NOT_SET


# Each time bucket: what rows are grouped by (cheap: numbers), and how a group's bucket
# is labelled afterwards, in ClickHouse's spelling of periods.FORMATS (minutes are %i).
_BUCKETS = {
    "minute": ("toStartOfMinute({ts}, {{tz:String}})", "'%Y-%m-%d %H:%i:00'"),
    "hour": ("toStartOfHour({ts}, {{tz:String}})", "'%Y-%m-%d %H:00:00'"),
    "day": ("toDate({ts}, {{tz:String}})", "'%Y-%m-%d'"),
    "week": ("toMonday({ts}, {{tz:String}})", "'%Y-%m-%d'"),
    "month": ("toStartOfMonth({ts}, {{tz:String}})", "'%Y-%m-01'"),
}
# multiSearchAny's most needles in one call.
NEEDLES = 255
# Metrics counted from events; the others from visits.
_EVENT_ROW_METRICS = frozenset({"visitors", "pageviews", "events", "users", "percentage"})

# The site's events of the range (engagement events only carry engagement data).
_EVENTS = """
ev AS (
    SELECT visitor_id, session_id, ts, path, event_type, hostname, props, user_id,
        event_type IN {pageviews:Array(String)} AS pv
    FROM events
    WHERE site_id = {site_id:String}
      AND ts >= {t0:DateTime64(3, 'UTC')} AND ts < {t1:DateTime64(3, 'UTC')}
      AND event_type != {engagement:String}
)"""

# The site's visits opened in the range (a visit's id is the time of its first event),
# their dimensions as v_<name>.
_VISITS = f"""
visits AS (
    SELECT visitor_id, session_id,
        fromUnixTimestamp64Milli(toInt64(session_id), 'UTC') AS v_opened,
        pageviews AS v_pageviews, events AS v_events, user_id AS v_user,
        toInt64(toUnixTimestamp64Milli(end) - toUnixTimestamp64Milli(start)) AS v_duration,
        finalizeAggregation(exit_page) AS v_exit_page,
        {", ".join(f"{c} AS v_{c}" for c in VISIT_DIMENSIONS.values() if c != "exit_page")}
    FROM sessions FINAL
    WHERE site_id = {{site_id:String}}
      AND toDate(fromUnixTimestamp64Milli(toInt64(session_id), 'UTC'))
          BETWEEN toDate({{t0:DateTime64(3, 'UTC')}}) AND toDate({{t1:DateTime64(3, 'UTC')}})
      AND session_id >= {{t0_ms:UInt64}} AND session_id < {{t1_ms:UInt64}}
)"""

# Events with their visit's dimensions (events without a visit get empty ones).
_JOINED = """
joined AS (
    SELECT * FROM ev LEFT JOIN visits USING (visitor_id, session_id)
)"""


@dataclass
class Compiled:
    """The SQL, its parameters, and the names of its output columns in order."""

    sql: str
    parameters: dict[str, Any]
    columns: list[str]
    reads_raw_events: bool = True  # False: answered from aggregates and visits only


@dataclass
class _Binder:
    """Names parameters as they are bound."""

    parameters: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any, type_: str) -> str:
        name = f"p{len(self.parameters)}"
        self.parameters[name] = value
        return f"{{{name}:{type_}}}"


def _column(dimension: str, binder: _Binder) -> str:
    """The raw value of a (non-time) dimension on a joined event row."""
    if dimension in EVENT_DIMENSIONS:
        return EVENT_DIMENSIONS[dimension]
    if dimension.startswith(PROPS_PREFIX):
        return f"props[{binder.bind(dimension.removeprefix(PROPS_PREFIX), 'String')}]"
    return f"v_{VISIT_DIMENSIONS[dimension]}"


def _condition(item: Filter, binder: _Binder) -> str:
    if isinstance(item, Logic):
        parts = [_condition(sub, binder) for sub in item.items]
        if item.op == "not":
            return f"NOT ({parts[0]})"
        return "(" + f" {item.op.upper()} ".join(f"({p})" for p in parts) + ")"
    column = _column(item.dimension, binder)
    sql = _simple(item, column, binder)
    return f"NOT ({sql})" if item.negated else sql


def _simple(item: Condition, column: str, binder: _Binder) -> str:
    label = empty_label(item.dimension)
    if item.op == "is":
        values = ["" if c == label else c for c in item.clauses]
        if item.case_sensitive:
            return f"{column} IN {binder.bind(values, 'Array(String)')}"
        lowered = [v.lower() for v in values]
        return f"lowerUTF8({column}) IN {binder.bind(lowered, 'Array(String)')}"
    if item.op == "contains":
        # One pass over the value for all needles (at most 255 a call). A lambda over the
        # needles (arrayExists) copies the whole array for every row: 120 KB of needles
        # took 4 GB.
        if "" in item.clauses:  # every value contains the empty string (as position())
            return "1"
        find = "multiSearchAny" if item.case_sensitive else "multiSearchAnyCaseInsensitiveUTF8"
        clauses = list(item.clauses)
        calls = [
            f"{find}({column}, {binder.bind(clauses[i : i + NEEDLES], 'Array(String)')})"
            for i in range(0, len(clauses), NEEDLES)
        ]
        return "(" + " OR ".join(calls) + ")"
    return (
        "("
        + " OR ".join(
            f"match({column}, {binder.bind(pattern_as_run(p, item.case_sensitive), 'String')})"
            for p in item.clauses
        )
        + ")"
    )


def _label(dimension: str, column: str) -> str:
    return f"if({column} = '', '{empty_label(dimension)}', toString({column}))"


def _uses(filters: tuple[Filter, ...], visit: bool) -> bool:
    """Whether any filter is on a visit dimension (visit) or an event one (not visit)."""
    for item in filters:
        if isinstance(item, Logic):
            if _uses(item.items, visit):
                return True
        elif is_event_dimension(item.dimension) != visit:
            return True
    return False


# Metrics the daily aggregates hold exactly (the same uniqExact states, summed views).
_DAILY_METRICS = {
    "visitors": "uniqExactMerge(visitors)",
    "users": "uniqExactMerge(users)",
    "pageviews": "sumIf(views, event_type IN {pageviews:Array(String)})",
    "events": "sum(views)",
}
_DAILY_BUCKETS = {"day": "day", "week": "toMonday(day)", "month": "toStartOfMonth(day)"}
# The aggregate table answering each breakdown (None: totals or a time series alone) and
# the metrics it holds: daily_totals per event type, daily_pages per event type and path.
_AGGREGATES = {
    None: ("daily_totals", frozenset(_DAILY_METRICS)),
    "event:name": ("daily_totals", frozenset(_DAILY_METRICS)),
    "event:page": ("daily_pages", frozenset({"visitors", "pageviews", "events"})),
}


def _daily(query: Query, period: Period, bucket: str | None) -> str | None:
    """The grouped rows from a daily aggregate when it holds the whole answer: no
    filters, whole UTC days, at most one dimension (a day/week/month time bucket, the
    event name or the page) and metrics that table holds. It reads a few rows per day
    instead of every event (and outlives raw retention)."""
    if query.filters or len(query.dimensions) > 1:
        return None
    if period.tz.key not in ("UTC", "Etc/UTC") or not all(
        moment.astimezone(dt.UTC).time() == dt.time(0) for moment in (period.start, period.end)
    ):
        return None
    dimension = query.dimensions[0] if query.dimensions else None
    time = dimension in TIME_DIMENSIONS
    if time and bucket not in _DAILY_BUCKETS:
        return None
    table, held = _AGGREGATES.get(None if time else dimension, ("", frozenset()))
    if not held.issuperset(query.metrics):
        return None
    select = [f"{_DAILY_METRICS[m]} AS m{i}" for i, m in enumerate(query.metrics)]
    group = ""
    if dimension is not None:
        if time:
            _, fmt = _BUCKETS[bucket or "day"]
            raw, label = (
                _DAILY_BUCKETS[bucket or "day"],
                f"formatDateTime(r0, {fmt}, {{tz:String}})",
            )
        else:
            raw, label = EVENT_DIMENSIONS[dimension], _label(dimension, "r0")
        select[:0] = [f"{raw} AS r0", f"{label} AS d0"]
        group = "\nGROUP BY r0"
    return (
        f"SELECT {', '.join(select)}\nFROM {table}\n"
        "WHERE site_id = {site_id:String} AND event_type != {engagement:String}\n"
        "  AND day >= toDate({t0:DateTime64(3, 'UTC')}) AND day < toDate({t1:DateTime64(3, 'UTC')})"
        + group
    )


def _grouped(
    labelled: list[str],
    names: list[str],
    raw: list[str],
    query: Query,
    metric_sql: dict[str, str],
    metric_names: list[str],
    parts: list[str],
) -> str:
    """The grouped rows from the union of event rows and visit rows."""
    return (
        "SELECT "
        + ", ".join(
            [
                *(f"{label} AS {n}" for label, n in zip(labelled, names, strict=True)),
                *(
                    f"{metric_sql[m]} AS {n}"
                    for m, n in zip(query.metrics, metric_names, strict=True)
                ),
            ]
        )
        + "\nFROM (\n"
        + "\nUNION ALL\n".join(parts)
        + ")"
        + (f"\nGROUP BY {', '.join(raw)}" if raw else "")
    )


def compile_query(
    query: Query,
    period: Period,
    bucket: str | None,
    limit: int | None,
    labels: list[str] | None = None,
) -> Compiled:
    """The SELECT answering `query` over `period`: `bucket` resolves a `time` dimension,
    `limit` caps the rows (None: all), `labels` fills every time bucket (when time is the
    only dimension)."""
    binder = _Binder(
        {
            "site_id": query.site_id,
            "t0": clickhouse_time(period.start),
            "t1": clickhouse_time(period.end),
            "t0_ms": epoch_ms(period.start),
            "t1_ms": epoch_ms(period.end),
            "tz": period.tz.key,
            "engagement": ENGAGEMENT,
            "pageviews": list(PAGEVIEWS),
        }
    )
    metrics = set(query.metrics)
    time = query.time_dimension
    event_filters = _uses(query.filters, visit=False)
    visit_filters = _uses(query.filters, visit=True)
    if query.event_dimensions:
        event_rows, session_rows = True, False
    elif time or event_filters:
        event_rows = bool(metrics & _EVENT_ROW_METRICS)
        session_rows = bool(metrics & {"visits", *SESSION_METRICS})
    else:
        event_rows, session_rows = False, True
    visit_dims = any(d in VISIT_DIMENSIONS for d in query.dimensions)
    match = " AND ".join(f"({_condition(f, binder)})" for f in query.filters) or "1"
    # Event rows need their visit's dimensions when those are grouped or filtered on.
    events_from = "joined" if visit_dims or visit_filters else "ev"

    # Rows carry each dimension's raw value (r<i>); groups are labelled (d<i>).
    dims_event, dims_visit, labelled = [], [], []
    for i, dimension in enumerate(query.dimensions):
        if dimension in TIME_DIMENSIONS:
            group, fmt = _BUCKETS[bucket or "day"]
            dims_event.append(group.format(ts="ts"))
            dims_visit.append(group.format(ts="v_opened"))
            labelled.append(f"formatDateTime(r{i}, {fmt}, {{tz:String}})")
        else:
            column = _column(dimension, binder)
            dims_event.append(column)
            dims_visit.append(column)
            labelled.append(_label(dimension, f"r{i}"))
    names = [f"d{i}" for i in range(len(query.dimensions))]
    raw = [f"r{i}" for i in range(len(query.dimensions))]

    parts = []
    if event_rows:
        select = "".join(f"{e} AS {n}, " for e, n in zip(dims_event, raw, strict=True))
        parts.append(
            f"SELECT 0 AS kind, {select}visitor_id, session_id, user_id AS user, "
            "toUInt64(pv) AS pageviews, toUInt64(1) AS nevents, toUInt64(0) AS spv, "
            "toInt64(0) AS dur "
            f"FROM {events_from} WHERE {match}"
        )
    if session_rows:
        select = "".join(f"{e} AS {n}, " for e, n in zip(dims_visit, raw, strict=True))
        if event_filters:
            # Visits with at least one matching event (seen with its visit's dimensions).
            where = (
                "(visitor_id, session_id) IN "
                f"(SELECT visitor_id, session_id FROM {events_from} WHERE {match})"
            )
        else:
            where = match
        parts.append(
            f"SELECT 1 AS kind, {select}visitor_id, session_id, v_user AS user, "
            "v_pageviews AS pageviews, v_events AS nevents, v_pageviews AS spv, "
            "v_duration AS dur "
            f"FROM visits WHERE {where}"
        )
    k = "0" if event_rows else "1"
    metric_sql = {
        "visitors": f"uniqExactIf(visitor_id, kind = {k} AND visitor_id != 0)",
        "visits": (
            "uniqExactIf((visitor_id, session_id), kind = 0 AND session_id != 0)"
            if query.event_dimensions
            else "countIf(kind = 1)"
        ),
        "pageviews": f"sumIf(pageviews, kind = {k})",
        "events": f"sumIf(nevents, kind = {k})",
        "users": f"uniqExactIf(user, kind = {k} AND user != '')",
        "bounce_rate": (
            "if(countIf(kind = 1) = 0, 0, "
            "round(100 * countIf(kind = 1 AND spv = 1) / countIf(kind = 1), 2))"
        ),
        "visit_duration": "if(countIf(kind = 1) = 0, 0, round(avgIf(dur, kind = 1) / 1000))",
        "views_per_visit": (
            "if(countIf(kind = 1) = 0, 0, round(sumIf(spv, kind = 1) / countIf(kind = 1), 2))"
        ),
        "percentage": (
            f"if(total_visitors = 0, 0, "
            f"round(100 * uniqExactIf(visitor_id, kind = {k} AND visitor_id != 0) "
            "/ total_visitors, 2))"
        ),
    }
    metric_names = [f"m{i}" for i in range(len(query.metrics))]
    if "percentage" in metrics:
        source = f"{events_from} WHERE {match}" if event_rows else f"({parts[-1]})"
        metric_sql["percentage"] = metric_sql["percentage"].replace(
            "total_visitors", f"(SELECT uniqExactIf(visitor_id, visitor_id != 0) FROM {source})"
        )
    daily = _daily(query, period, bucket)
    if daily is not None:
        inner = daily
    else:
        inner = _grouped(labelled, names, raw, query, metric_sql, metric_names, parts)
    if labels is not None:
        # Every bucket of the range, the empty ones as zeros (only time is grouped by).
        filled = ", ".join(f"r.{n} AS {n}" for n in metric_names)
        inner = (
            f"SELECT l.d0 AS d0, {filled} FROM "
            f"(SELECT arrayJoin({binder.bind(labels, 'Array(String)')}) AS d0) AS l "
            f"LEFT JOIN ({inner}) AS r ON l.d0 = r.d0"
        )
    selected = [*names, *metric_names]
    if query.include.total_rows:
        selected.append("count() OVER () AS total_rows")
    alias = dict(zip(query.dimensions, names, strict=True)) | dict(
        zip(query.metrics, metric_names, strict=True)
    )
    order = [f"{alias[name]} {direction.upper()}" for name, direction in query.order_by]
    order += [f"{n} ASC" for n in names if f"{n} ASC" not in order and f"{n} DESC" not in order]
    sql = (
        "WITH "
        + ",".join([_EVENTS, _VISITS, _JOINED])
        + f"\nSELECT {', '.join(selected)}\nFROM ({inner})"
        + (f"\nORDER BY {', '.join(order)}" if order else "")
        + (f"\nLIMIT {int(limit)} OFFSET {query.pagination.offset}" if limit else "")
        + (f"\nOFFSET {query.pagination.offset}" if not limit and query.pagination.offset else "")
    )
    columns = [*query.dimensions, *query.metrics]
    raw_events = daily is None and (event_rows or event_filters)
    return Compiled(sql, binder.parameters, columns, raw_events)

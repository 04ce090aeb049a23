"""A stats query as one ClickHouse SELECT over raw events, with visits computed at query
time: a visitor's events with no gap of 30 minutes or more (SESSION_GAP_MS) form one
visit; a visit's dimensions are those of its first event (its exit page, its last).

Two kinds of rows feed the final GROUP BY: matching events (kind 0: counted where and when
they happened) and matching visits (kind 1: counted once, in the bucket where they
started). A visit matches when at least one of its events matches the filters. Values
are bound as parameters; names (columns, functions, formats) come from the tables here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from reporting.periods import Period
from schemas.event import ENGAGEMENT, PAGEVIEWS
from schemas.query import (
    EVENT_DIMENSIONS,
    PROPS_PREFIX,
    SESSION_METRICS,
    TIME_DIMENSIONS,
    VISIT_DIMENSIONS,
    Condition,
    Filter,
    Logic,
    Query,
    empty_label,
)

SESSION_GAP_MS = 30 * 60 * 1000

# What a visit takes from its first event.
_VISIT_COLUMNS = tuple(c for c in VISIT_DIMENSIONS.values() if c not in ("entry_page", "exit_page"))
# ClickHouse's spelling of periods.FORMATS (its minutes are %i).
_BUCKET_SQL = {
    "minute": "formatDateTime({ts}, '%Y-%m-%d %H:%i:00', {{tz:String}})",
    "hour": "formatDateTime({ts}, '%Y-%m-%d %H:00:00', {{tz:String}})",
    "day": "formatDateTime({ts}, '%Y-%m-%d', {{tz:String}})",
    "week": "toString(toMonday({ts}, {{tz:String}}))",
    "month": "formatDateTime({ts}, '%Y-%m-01', {{tz:String}})",
}
_EVENT_ROW_METRICS = frozenset({"visitors", "pageviews", "events", "users", "percentage"})

# Every event of the range with its visit number `sn` (per visitor, counting gaps).
_EVENTS = f"""
ev AS (
    SELECT *, sum(gap) OVER (PARTITION BY visitor_id ORDER BY t ROWS UNBOUNDED PRECEDING) AS sn
    FROM (
        SELECT visitor_id, ts, toUnixTimestamp64Milli(ts) AS t, path, event_type, hostname,
            props, user_id, {", ".join(_VISIT_COLUMNS)},
            event_type IN {{pageviews:Array(String)}} AS pv,
            t - lagInFrame(t, 1, t) OVER (
                PARTITION BY visitor_id ORDER BY t ROWS BETWEEN 1 PRECEDING AND CURRENT ROW
            ) >= {SESSION_GAP_MS} AS gap
        FROM events
        WHERE site_id = {{site_id:String}}
          AND ts >= {{t0:DateTime64(3, 'UTC')}} AND ts < {{t1:DateTime64(3, 'UTC')}}
          AND event_type != {{engagement:String}}
    )
)"""

# Each visit: its bounds, page views, first/last page, and its first event's dimensions.
_SESSIONS = f"""
sessions AS (
    SELECT visitor_id, sn, min(t) AS v_start_ms, max(t) AS v_end_ms,
        fromUnixTimestamp64Milli(min(t), 'UTC') AS v_start,
        countIf(pv) AS v_pageviews, count() AS v_events,
        anyIf(user_id, user_id != '') AS v_user,
        argMin(path, t) AS v_entry_page, argMax(path, t) AS v_exit_page,
        {", ".join(f"argMin({c}, t) AS v_{c}" for c in _VISIT_COLUMNS)}
    FROM ev
    GROUP BY visitor_id, sn
)"""

_JOINED = """
joined AS (
    SELECT * FROM ev INNER JOIN sessions USING (visitor_id, sn)
)"""


@dataclass
class Compiled:
    """The SQL, its parameters, and the names of its output columns in order."""

    sql: str
    parameters: dict[str, Any]
    columns: list[str]
    has_total_rows: bool = False


@dataclass
class _Binder:
    """Names parameters as they are bound."""

    parameters: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any, type_: str) -> str:
        name = f"p{len(self.parameters)}"
        self.parameters[name] = value
        return f"{{{name}:{type_}}}"


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


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
        find = "position" if item.case_sensitive else "positionCaseInsensitiveUTF8"
        needles = binder.bind(list(item.clauses), "Array(String)")
        return f"arrayExists(needle -> {find}({column}, needle) > 0, {needles})"
    flags = "" if item.case_sensitive else "(?i)"
    return (
        "("
        + " OR ".join(
            f"match({column}, {binder.bind(flags + pattern, 'String')})" for pattern in item.clauses
        )
        + ")"
    )


def _label(dimension: str, column: str) -> str:
    return f"if({column} = '', '{empty_label(dimension)}', toString({column}))"


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
            "t0": _instant(period.start),
            "t1": _instant(period.end),
            "tz": period.tz.key,
            "engagement": ENGAGEMENT,
            "pageviews": list(PAGEVIEWS),
        }
    )
    metrics = set(query.metrics)
    event_grain = bool(query.event_dimensions)
    time = query.time_dimension
    if event_grain:
        event_rows, session_rows = True, False
    elif time:
        event_rows = bool(metrics & _EVENT_ROW_METRICS)
        session_rows = bool(metrics & {"visits", *SESSION_METRICS})
    else:
        event_rows, session_rows = False, True
    match = " AND ".join(f"({_condition(f, binder)})" for f in query.filters) or "1"

    dims_event, dims_session = [], []
    for dimension in query.dimensions:
        if dimension in TIME_DIMENSIONS:
            template = _BUCKET_SQL[bucket or "day"]
            dims_event.append(template.format(ts="ts"))
            dims_session.append(template.format(ts="v_start"))
        else:
            column = _column(dimension, binder)
            dims_event.append(_label(dimension, column))
            dims_session.append(_label(dimension, column))
    names = [f"d{i}" for i in range(len(query.dimensions))]

    parts = []
    if event_rows:
        select = ", ".join([*(f"{e} AS {n}" for e, n in zip(dims_event, names, strict=True))])
        parts.append(
            f"SELECT 0 AS kind, {select + ', ' if select else ''}visitor_id, sn, "
            "user_id AS user, toUInt64(1) AS me, toUInt64(pv) AS mpv, "
            "toUInt64(0) AS spv, toInt64(0) AS dur "
            f"FROM joined WHERE {match}"
        )
    if session_rows:
        select = ", ".join(f"any({e}) AS {n}" for e, n in zip(dims_session, names, strict=True))
        parts.append(
            f"SELECT 1 AS kind, {select + ', ' if select else ''}visitor_id, sn, "
            "any(v_user) AS user, toUInt64(countIf({m})) AS me, "
            "toUInt64(countIf(({m}) AND pv)) AS mpv, toUInt64(any(v_pageviews)) AS spv, "
            "toInt64(any(v_end_ms) - any(v_start_ms)) AS dur "
            "FROM joined GROUP BY visitor_id, sn HAVING me > 0".replace("{m}", match)
        )
    k = "0" if event_rows else "1"
    metric_sql = {
        "visitors": f"uniqExactIf(visitor_id, kind = {k})",
        "visits": (
            "uniqExactIf((visitor_id, sn), kind = 0)" if event_grain else "countIf(kind = 1)"
        ),
        "pageviews": f"sumIf(mpv, kind = {k})",
        "events": f"sumIf(me, kind = {k})",
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
            f"round(100 * uniqExactIf(visitor_id, kind = {k}) / total_visitors, 2))"
        ),
    }
    metric_names = [f"m{i}" for i in range(len(query.metrics))]
    if "percentage" in metrics:
        source = "joined WHERE " + match if event_rows else f"({parts[-1]})"
        metric_sql["percentage"] = metric_sql["percentage"].replace(
            "total_visitors", f"(SELECT uniqExact(visitor_id) FROM {source})"
        )
    inner = (
        "SELECT "
        + ", ".join(
            [
                *names,
                *(
                    f"{metric_sql[m]} AS {n}"
                    for m, n in zip(query.metrics, metric_names, strict=True)
                ),
            ]
        )
        + "\nFROM (\n"
        + "\nUNION ALL\n".join(parts)
        + ")"
        + (f"\nGROUP BY {', '.join(names)}" if names else "")
    )
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
        + ",".join([_EVENTS, _SESSIONS, _JOINED])
        + f"\nSELECT {', '.join(selected)}\nFROM ({inner})"
        + (f"\nORDER BY {', '.join(order)}" if order else "")
        + (f"\nLIMIT {int(limit)} OFFSET {query.pagination.offset}" if limit else "")
        + (f"\nOFFSET {query.pagination.offset}" if not limit and query.pagination.offset else "")
    )
    columns = [*query.dimensions, *query.metrics]
    return Compiled(sql, binder.parameters, columns, query.include.total_rows)

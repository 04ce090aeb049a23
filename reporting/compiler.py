"""A stats query as one ClickHouse SELECT, compiled in stages: the tables that answer
(reporting/tables.py), the grouped rows from a daily aggregate (reporting/daily.py) or
from the union of event and visit rows (reporting/sources.py) with the filters
(reporting/where.py), dimensions (reporting/expressions.py) and metrics
(reporting/metrics.py); then every time bucket filled, the order and the page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reporting import daily, goals, metrics, revenue, sources, tables, where
from reporting.expressions import Binder, dimensions
from reporting.model import Query
from reporting.periods import Period
from schemas.event import ENGAGEMENT, PAGEVIEWS, clickhouse_time, epoch_ms
from schemas.query import CONVERSION_METRICS, GOAL_DIMENSION, REVENUE_METRICS


@dataclass
class Compiled:
    """The SQL, its parameters, and the names of its output columns in order."""

    sql: str
    parameters: dict[str, Any]
    columns: list[str]
    reads_raw_events: bool = True  # False: answered from aggregates and visits only
    # True: the answer has no rows whatever the data, so the SQL need not run (a goal
    # breakdown of a site without goals: each of its rows is a goal an event completed).
    no_rows: bool = False


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
    binder = Binder(parameters(query, period), query.goals)
    answering = tables.decide(query, period, bucket)
    if answering.daily is not None:
        inner = daily.grouped(query, answering.daily, bucket)
    else:
        inner = grouped(query, answering, bucket, binder)
    if labels is not None:
        inner = filled(inner, labels, len(query.metrics), binder)
    body = (
        f"SELECT {', '.join(selected(query))}\nFROM ({inner})"
        + ordered(query)
        + paged(query, limit)
    )
    common = sources.with_clause(body)
    sql = f"{common}\n{body}" if common else body
    columns = [*query.dimensions, *query.metrics]
    no_rows = GOAL_DIMENSION in query.dimensions and not query.goals
    return Compiled(sql, binder.parameters, columns, answering.reads_raw_events, no_rows)


def parameters(query: Query, period: Period) -> dict[str, Any]:
    """The parameters every query's SQL binds (the site, the range, the event types)."""
    return {
        "site_id": query.site_id,
        "t0": clickhouse_time(period.start),
        "t1": clickhouse_time(period.end),
        "t0_ms": epoch_ms(period.start),
        "t1_ms": epoch_ms(period.end),
        "tz": period.tz.key,
        "engagement": ENGAGEMENT,
        "pageviews": list(PAGEVIEWS),
    }


def grouped(query: Query, answering: tables.Tables, bucket: str | None, binder: Binder) -> str:
    """The grouped rows from the union of event rows and visit rows: each dimension's
    label as d<i>, each metric as m<i>."""
    match = where.match(query.filters, binder)
    dims = dimensions(query.dimensions, bucket, binder)
    amount = ""
    if any(m in REVENUE_METRICS for m in query.metrics):
        amount = revenue.amount_sql(query, binder)
    rows = sources.rows(answering, dims.event, dims.visit, match, amount)
    by_events = bool(query.event_dimensions)
    whole = kept = ""
    if any(m in CONVERSION_METRICS for m in query.metrics):
        kept = where.match(goals.without_goal_filters(query.filters), binder)
        whole = f"{answering.events_from} WHERE {kept}"
    select = [
        *(f"{labelled} AS d{i}" for i, labelled in enumerate(dims.labelled)),
        *(
            f"{metrics.aggregate(m, answering, by_events, rows.counted, whole)} AS m{i}"
            for i, m in enumerate(query.metrics)
        ),
    ]
    raw = [f"r{i}" for i in range(len(query.dimensions))]
    union = "\nUNION ALL\n".join(rows.parts)
    group = f"\nGROUP BY {', '.join(raw)}" if raw else ""
    inner = f"SELECT {', '.join(select)}\nFROM (\n{union})" + group
    if "group_conversion_rate" in query.metrics:
        inner = per_group(
            inner, query, dims.event, dims.labelled, f"{answering.events_from} WHERE {kept}"
        )
    return inner


def per_group(inner: str, query: Query, raw: list[str], labelled: list[str], kept: str) -> str:
    """group_conversion_rate: each group's converted visitors (the inner rows) over the
    visitors of the same group among the event rows `kept` (the query without its goal
    and property filters), joined on the dimensions' labels (Plausible's left join)."""
    grouped_by = [f"r{i}" for i in range(len(raw))]
    totals = (
        "SELECT "
        + "".join(f"{name} AS t{i}, " for i, name in enumerate(labelled))
        + "uniqExactIf(visitor_id, visitor_id != 0) AS visitors FROM (SELECT "
        + "".join(f"{expression} AS r{i}, " for i, expression in enumerate(raw))
        + f"visitor_id FROM {kept})"
        + (f" GROUP BY {', '.join(grouped_by)}" if grouped_by else "")
    )
    on = " AND ".join(f"g.d{i} = t.t{i}" for i in range(len(raw)))
    joined = f"LEFT JOIN ({totals}) AS t ON {on}" if on else f"CROSS JOIN ({totals}) AS t"
    columns = [f"g.d{i} AS d{i}" for i in range(len(raw))] + [
        f"{metrics.group_rate(f'g.m{i}', 't.visitors')} AS m{i}"
        if m == "group_conversion_rate"
        else f"g.m{i} AS m{i}"
        for i, m in enumerate(query.metrics)
    ]
    return f"SELECT {', '.join(columns)} FROM ({inner}) AS g {joined}"


def filled(inner: str, labels: list[str], n_metrics: int, binder: Binder) -> str:
    """Every bucket of the range, the empty ones as zeros (only time is grouped by)."""
    values = ", ".join(f"r.m{i} AS m{i}" for i in range(n_metrics))
    return (
        f"SELECT l.d0 AS d0, {values} FROM "
        f"(SELECT arrayJoin({binder.bind(labels, 'Array(String)')}) AS d0) AS l "
        f"LEFT JOIN ({inner}) AS r ON l.d0 = r.d0"
    )


def selected(query: Query) -> list[str]:
    """The output columns: d<i> then m<i>, and the row count when asked for."""
    out = [*_names(query).values()]
    if query.include.total_rows:
        out.append("count() OVER () AS total_rows")
    return out


def ordered(query: Query) -> str:
    """ORDER BY as asked, then every dimension not ordered yet, ascending."""
    alias = _names(query)
    order = [f"{alias[name]} {direction.upper()}" for name, direction in query.order_by]
    for i in range(len(query.dimensions)):
        if f"d{i} ASC" not in order and f"d{i} DESC" not in order:
            order.append(f"d{i} ASC")
    return f"\nORDER BY {', '.join(order)}" if order else ""


def paged(query: Query, limit: int | None) -> str:
    """LIMIT and OFFSET: the page asked for (all rows from the offset without a limit)."""
    offset = query.pagination.offset
    if limit:
        return f"\nLIMIT {int(limit)} OFFSET {offset}"
    return f"\nOFFSET {offset}" if offset else ""


def _names(query: Query) -> dict[str, str]:
    """Each dimension's and metric's output column name, in output order."""
    return {d: f"d{i}" for i, d in enumerate(query.dimensions)} | {
        m: f"m{i}" for i, m in enumerate(query.metrics)
    }

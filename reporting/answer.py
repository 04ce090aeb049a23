"""The answer to a stats query: plan it (range, buckets, labels), run it and its
comparison, and shape the rows as Plausible's Stats API v2 does."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from reporting import csvcells, legacy_shape, periods, revenue
from reporting.compiler import Compiled, compile_query
from reporting.model import Condition, DateRange, Query, QueryError
from reporting.parse import FIRST_MOMENT, comparison_range
from reporting.periods import Period
from reporting.queries import TOP_PATHS_LIMIT, DayStats, StatsReader
from schemas.query import CONVERSION_METRICS, MAX_LIMIT, REVENUE_METRICS, Pagination

# A compiled query's SQL at most (the engine refuses past its max_query_size, 256 KiB):
# the filters' bounds (reporting/filters.py) keep far below it; this is the last guard.
MAX_SQL_CHARS = 200_000
# A CSV answer without a limit has every row, up to this many.
MAX_CSV_ROWS = 1_000_000

# Metrics answered as whole numbers; the others (rates, ratios) as decimals.
INT_METRICS = frozenset({"visitors", "visits", "pageviews", "events", "users", "visit_duration"})


@dataclass(frozen=True)
class Plan:
    """A query made concrete: its period, time bucket, every bucket's label (with a time
    dimension) and SQL."""

    query: Query
    period: Period
    bucket: str | None
    buckets: list[str] | None
    compiled: Compiled
    earlier: Period | None = None  # the period compared with, if any


def plan(
    query: Query,
    tz: ZoneInfo,
    now: dt.datetime,
    first_day: dt.date | None = None,
    period: Period | None = None,
    csv: bool = False,
    raw_ttl_days: int = 0,
) -> Plan:
    """Resolve the range in the site's zone and compile; raises QueryError for a time
    dimension with too many buckets, or for a range that reaches days whose raw events
    have expired (`raw_ttl_days`) when the answer needs them."""
    period = period or periods.resolve(query.date_range, tz, now, first_day)
    bucket, buckets = _buckets(query, period)
    fill = buckets if _fills(query) else None
    limit = query.pagination.limit or (MAX_CSV_ROWS if csv else MAX_LIMIT)
    compiled = compile_query(query, period, bucket, limit, fill)
    if len(compiled.sql) > MAX_SQL_CHARS:
        raise QueryError("filters", "the query is too large: use fewer filters or values")
    earlier = _compared_with(query, period, now)
    if raw_ttl_days and compiled.reads_raw_events:
        _check_kept(period, now, raw_ttl_days)
    return Plan(query, period, bucket, buckets, compiled, earlier)


def _fills(query: Query) -> bool:
    """Whether every time bucket is a row: asked for (`include.fill_empty`, hitstream's
    extension), or as Plausible does for a comparison of a time series alone (its
    `add_empty_timeseries_rows`); otherwise only the buckets with data, as Plausible
    answers `include.time_labels`."""
    if query.time_dimension is None or len(query.dimensions) != 1:
        return False
    return query.include.fill_empty or _compares(query)


def _compares(query: Query) -> bool:
    return query.include.compare is not None or query.include.comparisons is not None


def _buckets(query: Query, period: Period) -> tuple[str | None, list[str] | None]:
    """The time dimension's bucket and every bucket's label (None, None without one)."""
    time = query.time_dimension
    if not time:
        return None, None
    bucket = periods.auto_bucket(period) if time == "time" else time.split(":", 1)[1]
    where = f"dimensions[{query.dimensions.index(time)}]"
    return bucket, periods.checked_labels(period, bucket, where)


def _check_kept(period: Period, now: dt.datetime, raw_ttl_days: int) -> None:
    """A 400 for a range reaching days whose raw events have expired."""
    kept_from = now - dt.timedelta(days=raw_ttl_days - 1)
    kept_from = dt.datetime.combine(kept_from.date(), dt.time(0), tzinfo=dt.UTC)
    if period.start < kept_from:
        raise QueryError(
            "date_range",
            f"raw events before {kept_from.date().isoformat()} have expired "
            f"(HITSTREAM_RAW_TTL_DAYS={raw_ttl_days}) and this query needs them; "
            "unfiltered visitors, page views, events and users over whole UTC days (in "
            "total, by time, by event name or by page), and visit metrics without event "
            "filters, are kept for every day",
        )


def _compared_with(query: Query, period: Period, now: dt.datetime) -> Period | None:
    """The period compared with, if any: before, a year before, or a custom range (moved
    to the same day of the week if asked); a 400 if it starts before the first day an
    event can have."""
    include = query.include
    comparisons = include.comparisons
    how = comparisons.mode if comparisons else include.compare
    if how is None:
        return None
    try:
        if comparisons and comparisons.mode == "custom":
            assert comparisons.date_range is not None  # reporting/parse.py checked it
            earlier = periods.resolve(comparison_range(comparisons.date_range), period.tz, now)
        else:
            earlier = periods.previous(period, how)
            if comparisons and comparisons.match_day_of_week:
                earlier = periods.same_weekday(earlier, period)
    except (ValueError, OverflowError):
        earlier = None
    if earlier is None or earlier.start < FIRST_MOMENT:
        field = "include.comparisons" if comparisons else "include.compare"
        raise QueryError(field, f"the period compared with starts before {FIRST_MOMENT.date()}")
    return earlier


def _metric(name: str, value: Any) -> int | float | None:
    if name in REVENUE_METRICS:  # shaped by revenue.shape (JSON); a number or empty in CSV
        return None if value is None else float(value)
    if value is None:
        return 0
    return int(value) if name in INT_METRICS else float(value)


def _shape(query: Query, row: Sequence[Any]) -> dict[str, Any]:
    n = len(query.dimensions)
    return {
        "metrics": [_metric(m, v) for m, v in zip(query.metrics, row[n:], strict=False)],
        "dimensions": [str(d) for d in row[:n]],
    }


def _change(metric: str, now: float, before: float) -> float | int | None:
    """Percent change; for rates (bounce rate, conversion rates) the difference in points."""
    if metric == "bounce_rate":
        return round(now - before, 2)
    if metric in CONVERSION_METRICS:
        return round(now - before, 1)
    if before == 0:
        return None if now else 0
    return round((now - before) / before * 100)


def answer(
    reader: StatsReader, the_plan: Plan, echo: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """The JSON answer: results, meta, and the query as understood."""
    query = the_plan.query
    rows = reader.rows(the_plan.compiled)
    meta: dict[str, Any] = {}
    if query.include.total_rows:
        if rows:
            meta["total_rows"] = int(rows[0][-1])
        elif query.pagination.offset:
            meta["total_rows"] = _total_rows(reader, the_plan, now)
        else:
            meta["total_rows"] = 0
        rows = [row[:-1] for row in rows]
    results = [_shape(query, row) for row in rows]
    if the_plan.earlier is not None:
        _compare(reader, the_plan, results, now)
    warnings = revenue.shape(query, results)
    if warnings:
        meta["metric_warnings"] = warnings
    if query.include.time_labels:
        meta["time_labels"] = the_plan.buckets
    if query.include.imports:
        meta["imports_included"] = False
    return {
        "results": results,
        "meta": meta,
        "query": {
            **echo,
            "date_range": the_plan.period.shown(),
            "time_zone": the_plan.period.tz.key,
            "order_by": [list(pair) for pair in query.order_by],
            "include": _include_echo(the_plan),
            "pagination": {
                "limit": query.pagination.limit or MAX_LIMIT,
                "offset": query.pagination.offset,
            },
        },
    }


def _include_echo(the_plan: Plan) -> dict[str, Any]:
    """`include` as understood: the keys set; Plausible's comparisons with the range
    compared with, as date-times in the site's zone."""
    include = the_plan.query.include.model_dump(exclude_defaults=True)
    if "comparisons" in include and the_plan.earlier is not None:
        include["comparisons"]["date_range"] = the_plan.earlier.shown()
    return include


def _total_rows(reader: StatsReader, the_plan: Plan, now: dt.datetime) -> int:
    """The row count when the page asked for is past the last row."""
    query = the_plan.query
    first = dataclasses.replace(
        query, pagination=query.pagination.model_copy(update={"offset": 0, "limit": 1})
    )
    rows = reader.rows(plan(first, the_plan.period.tz, now, period=the_plan.period).compiled)
    return int(rows[0][-1]) if rows else 0


def _compare(
    reader: StatsReader, the_plan: Plan, results: list[dict[str, Any]], now: dt.datetime
) -> None:
    """Give each row the same row of the previous period (time buckets by position)."""
    query = the_plan.query
    before = _earlier_plan(the_plan, now)
    before_positions = _positions(before.buckets)
    previous_rows = {
        _row_key(query, row["dimensions"], before_positions): row
        for row in (_shape(query, r) for r in reader.rows(before.compiled))
    }
    positions = _positions(the_plan.buckets)
    plausible = query.include.comparisons is not None
    for row in results:
        key = _row_key(query, row["dimensions"], positions)
        match = previous_rows.get(key)
        metrics = list(match["metrics"]) if match else [0 for _ in query.metrics]
        if match:
            dimensions = match["dimensions"]
        elif plausible:  # the row's, its time bucket as the compared period's at its place
            dimensions = _compared_dimensions(query, row["dimensions"], key, before.buckets)
        else:
            dimensions = []
        row["comparison"] = {
            "dimensions": dimensions,
            "metrics": metrics,
            # Revenue's NULL (no amount) counts as 0 here; revenue.shape nulls the
            # change of a row without a currency, as Plausible does.
            "change": [
                _plausible_change(m, _zero(a), _zero(b))
                if plausible
                else _change(m, _zero(a), _zero(b))
                for m, a, b in zip(query.metrics, row["metrics"], metrics, strict=True)
            ],
        }


def _zero(value: float | None) -> float:
    return 0 if value is None else value


def _plausible_change(metric: str, now: float, before: float) -> float | int | None:
    """Plausible's change (reporting/legacy_shape.py), bounce rate points to 2 decimals."""
    change = legacy_shape.change(metric, now, before)
    return round(change, 2) if isinstance(change, float) else change


def _compared_dimensions(
    query: Query, dimensions: list[str], key: tuple[str, ...], buckets: list[str] | None
) -> list[str | None]:
    time = query.time_dimension
    if time is None:
        return list(dimensions)
    at = query.dimensions.index(time)
    position = int(key[at])
    label = buckets[position] if buckets and 0 <= position < len(buckets) else None
    return [*dimensions[:at], label, *dimensions[at + 1 :]]


def _earlier_plan(the_plan: Plan, now: dt.datetime) -> Plan:
    """The query over the period compared with: every row, and without a comparison of
    its own (checked already)."""
    query = the_plan.query
    assert the_plan.earlier is not None
    unpaged = dataclasses.replace(
        query,
        include=query.include.model_copy(
            update={"total_rows": False, "compare": None, "comparisons": None}
        ),
        pagination=query.pagination.model_copy(update={"offset": 0, "limit": MAX_LIMIT}),
    )
    return plan(unpaged, the_plan.period.tz, now, period=the_plan.earlier)


def _positions(buckets: list[str] | None) -> dict[str, int]:
    return {label: i for i, label in enumerate(buckets or ())}


def _row_key(query: Query, dimensions: list[str], positions: dict[str, int]) -> tuple[str, ...]:
    """A row's dimensions, its time bucket as its position among the period's buckets."""
    time = query.time_dimension
    if time is None:
        return tuple(dimensions)
    at = query.dimensions.index(time)
    return (*dimensions[:at], str(positions.get(dimensions[at], -1)), *dimensions[at + 1 :])


def csv_lines(reader: StatsReader, the_plan: Plan) -> Iterator[bytes]:
    """The answer as CSV, header first, streamed block by block; dimension values (event
    data) a spreadsheet would evaluate are quoted (reporting.csvcells), metrics are numbers."""
    query = the_plan.query
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(the_plan.compiled.columns)
    for block in reader.blocks(the_plan.compiled):
        for row in block:
            shaped = _shape(query, row[: len(the_plan.compiled.columns)])
            writer.writerow([*map(csvcells.cell, shaped["dimensions"]), *shaped["metrics"]])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    tail = buffer.getvalue()
    if tail:
        yield tail.encode()


def local_day_stats(
    reader: StatsReader, site_id: str, day: dt.date, event_type: str | None, tz: ZoneInfo
) -> DayStats:
    """`GET /stats` for a site with a time zone: its local day, from the raw events (the
    daily aggregates hold UTC days)."""
    now = dt.datetime.now(dt.UTC)
    filters = (Condition("is", "event:name", (event_type,)),) if event_type else ()
    totals = Query(
        site_id,
        DateRange(first=day, last=day),
        ("events", "users", "visitors"),
        filters=filters,
        order_by=(("events", "desc"),),
    )
    paths = dataclasses.replace(
        totals,
        metrics=("events",),
        dimensions=("event:page",),
        order_by=(("events", "desc"), ("event:page", "asc")),
        pagination=Pagination(limit=TOP_PATHS_LIMIT),
    )
    views, users, visitors = reader.rows(plan(totals, tz, now).compiled)[0]
    top = reader.rows(plan(paths, tz, now).compiled)
    return DayStats(
        site_id, day, int(views), int(users), int(visitors), [(str(p), int(n)) for p, n in top]
    )

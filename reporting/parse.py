"""What a stats query body means: its range, metrics, dimensions, filters and order
checked into a `Query`. Every refusal names the part of the request it is about
(`metrics[1]`, `filters[0][2]`), so a client can fix its query from the 400 alone.
"""

from __future__ import annotations

import datetime as dt
import re

from reporting.filters import check_dimension, parse_filters
from reporting.model import Condition, DateRange, Filter, Query, QueryError
from reporting.periods import MAX_DAYS, days_of
from schemas.query import (
    CONVERSION_METRICS,
    GOAL_DIMENSION,
    METRICS,
    RANGE_KEYWORDS,
    SESSION_METRICS,
    TIME_DIMENSIONS,
    QueryBody,
    is_event_dimension,
)

# The first moment a range, or the period it is compared with, may start.
FIRST_MOMENT = dt.datetime(1970, 1, 2, tzinfo=dt.UTC)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse(body: QueryBody) -> Query:
    """Check what the query means; the first fault raises `QueryError`."""
    date_range = _date_range(body.date_range)
    _check_metrics(body.metrics)
    _check_dimensions(body.dimensions)
    _check_metrics_by_dimensions(body.metrics, body.dimensions)
    filters = parse_filters(body.filters)
    _check_conversions(body.metrics, body.dimensions, filters)
    order_by = _order_by(body)
    if body.include.time_labels and not any(d in TIME_DIMENSIONS for d in body.dimensions):
        raise QueryError(
            "include.time_labels",
            "needs a time dimension",
            "Invalid include.time_labels: requires a time dimension.",
        )
    _check_comparisons(body)
    time = [d for d in body.dimensions if d in TIME_DIMENSIONS]
    if body.include.fill_empty and (not time or len(body.dimensions) > 1):
        raise QueryError("include.fill_empty", "needs a time dimension as the only dimension")
    return Query(
        site_id=body.site_id,
        date_range=date_range,
        metrics=tuple(body.metrics),
        dimensions=tuple(body.dimensions),
        filters=filters,
        order_by=order_by,
        include=body.include,
        pagination=body.pagination,
        format=body.format,
    )


def _check_comparisons(body: QueryBody) -> None:
    """One form of comparison; a custom one with its range, the others without."""
    comparisons = body.include.comparisons
    if comparisons is None:
        return
    if body.include.compare is not None:
        raise QueryError("include.comparisons", "give include.compare or comparisons, not both")
    where = "include.comparisons.date_range"
    if comparisons.mode != "custom":
        if comparisons.date_range is not None:
            raise QueryError(where, 'only with the mode "custom"')
        return
    if comparisons.date_range is None or len(comparisons.date_range) != 2:
        raise QueryError(where, 'the mode "custom" needs [from, to]')
    comparison_range(comparisons.date_range)


def comparison_range(bounds: list[str]) -> DateRange:
    """A custom comparison's [from, to], checked as date_range is."""
    where = "include.comparisons.date_range"
    return explicit_range(bounds[0], bounds[1], names=(f"{where}[0]", f"{where}[1]"), whole=where)


def _check_metrics(metrics: list[str]) -> None:
    for i, metric in enumerate(metrics):
        if metric not in METRICS:
            raise QueryError(f"metrics[{i}]", f"unknown metric {metric[:100]!r}")
    if len(set(metrics)) != len(metrics):
        raise QueryError("metrics", "a metric is listed twice")


def _check_dimensions(dimensions: list[str]) -> None:
    for i, dimension in enumerate(dimensions):
        check_dimension(dimension, f"dimensions[{i}]", time_allowed=True)
    if len(set(dimensions)) != len(dimensions):
        raise QueryError("dimensions", "a dimension is listed twice")
    if sum(d in TIME_DIMENSIONS for d in dimensions) > 1:
        raise QueryError("dimensions", "at most one time dimension")


def _check_metrics_by_dimensions(metrics: list[str], dimensions: list[str]) -> None:
    """Visit metrics are not broken down by event dimensions; percentage needs one."""
    event_dimensions = [d for d in dimensions if is_event_dimension(d)]
    for i, metric in enumerate(metrics):
        if metric in SESSION_METRICS and event_dimensions:
            raise QueryError(
                f"metrics[{i}]",
                f"{metric} is a metric of whole visits and cannot be broken down by the "
                f"event dimension {event_dimensions[0]}",
            )
        if metric == "percentage" and not dimensions:
            raise QueryError(f"metrics[{i}]", "percentage needs at least one dimension")


def _check_conversions(
    metrics: list[str], dimensions: list[str], filters: tuple[Filter, ...]
) -> None:
    """A conversion rate needs a goal: `event:goal` as a dimension or a top-level filter
    (Plausible's rule and message)."""
    if GOAL_DIMENSION in dimensions or any(
        isinstance(f, Condition) and f.dimension == GOAL_DIMENSION for f in filters
    ):
        return
    for i, metric in enumerate(metrics):
        if metric in CONVERSION_METRICS:
            message = (
                f"Metric `{metric}` can only be queried with event:goal filters or dimensions."
            )
            raise QueryError(f"metrics[{i}]", message, message)


def _order_by(body: QueryBody) -> tuple[tuple[str, str], ...]:
    """As given, or the time dimension ascending then the first metric descending."""
    if body.order_by is None:
        time = next((d for d in body.dimensions if d in TIME_DIMENSIONS), None)
        default = [(time, "asc")] if time else []
        return (*default, (body.metrics[0], "desc"))
    out = []
    for i, pair in enumerate(body.order_by):
        where = f"order_by[{i}]"
        if len(pair) != 2 or pair[1] not in ("asc", "desc"):
            raise QueryError(where, 'is [metric or dimension, "asc" or "desc"]')
        if pair[0] not in body.metrics and pair[0] not in body.dimensions:
            raise QueryError(where, f"{pair[0][:100]!r} is not among the metrics or dimensions")
        out.append((pair[0], pair[1]))
    return tuple(out)


def _date_range(value: str | list[str]) -> DateRange:
    if isinstance(value, str):
        if value not in RANGE_KEYWORDS and not days_of(value):
            raise QueryError(
                "date_range",
                f"unknown range {value[:50]!r}: use {', '.join(RANGE_KEYWORDS)}, "
                f"or Nd (N from 1 to {MAX_DAYS})",
            )
        return DateRange(keyword=value)
    if len(value) != 2:
        raise QueryError("date_range", "an explicit range is [from, to]")
    first, last = value
    return explicit_range(first, last, names=("date_range[0]", "date_range[1]"), whole="date_range")


def explicit_range(
    first_text: str, last_text: str, names: tuple[str, str], whole: str
) -> DateRange:
    """[from, to]: two dates or two date-times with offsets, in order; errors name the
    bound at fault (`names`) or the range (`whole`)."""
    first, last = _bound(first_text, names[0]), _bound(last_text, names[1])
    if type(first) is not type(last):
        raise QueryError(whole, "both bounds are dates, or both are date-times")
    if first > last:
        raise QueryError(whole, "from is after to")
    return DateRange(first=first, last=last)


def _bound(text: str, where: str) -> dt.date | dt.datetime:
    """A date (YYYY-MM-DD) or a date-time with an offset; `where` names it in errors."""
    try:
        if _DAY.match(text):
            day = dt.date.fromisoformat(text)
            if not FIRST_MOMENT.date() <= day <= dt.date(2099, 12, 31):
                raise QueryError(where, "must be between 1970-01-02 and 2099-12-31")
            return day
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(
            where, "must be a date (YYYY-MM-DD) or a date-time with an offset"
        ) from None
    if moment.tzinfo is None:
        raise QueryError(where, "a date-time needs an offset, e.g. 2024-01-01T12:00:00+02:00")
    if not FIRST_MOMENT <= moment <= dt.datetime(2100, 1, 1, tzinfo=dt.UTC):
        raise QueryError(where, "must be between 1970-01-02 and 2100")
    return moment

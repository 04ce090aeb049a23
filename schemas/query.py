"""The stats query (`POST /api/v2/query`, Plausible's Stats API v2 shape): its vocabulary
(metrics, dimensions, filter operators, range keywords) and its validation into a `Query`.

Every refusal names the part of the request it is about (`metrics[1]`, `filters[0][2]`),
so a client can fix its query from the 400 alone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from foundation.errors import HitstreamError
from schemas.event import MAX_PROP_KEY, MAX_PROP_VALUE
from schemas.urls import UNSAFE, UNSAFE_MESSAGE

# Metrics counted from events; the session metrics need whole visits.
EVENT_METRICS = ("visitors", "visits", "pageviews", "events", "users")
SESSION_METRICS = ("views_per_visit", "bounce_rate", "visit_duration")
METRICS = (*EVENT_METRICS, *SESSION_METRICS, "percentage")

# Event dimensions and the events column each reads.
EVENT_DIMENSIONS = {"event:page": "path", "event:name": "event_type", "event:hostname": "hostname"}
PROPS_PREFIX = "event:props:"
# Visit dimensions: the value of the visit's first event (entry page) or last (exit page).
VISIT_DIMENSIONS = {
    "visit:entry_page": "entry_page",
    "visit:exit_page": "exit_page",
    "visit:source": "source",
    "visit:referrer": "referrer",
    "visit:utm_source": "utm_source",
    "visit:utm_medium": "utm_medium",
    "visit:utm_campaign": "utm_campaign",
    "visit:utm_term": "utm_term",
    "visit:utm_content": "utm_content",
    "visit:device": "device",
    "visit:browser": "browser",
    "visit:browser_version": "browser_version",
    "visit:os": "os",
    "visit:os_version": "os_version",
    "visit:country": "country",
}
TIME_BUCKETS = ("minute", "hour", "day", "week", "month")
TIME_DIMENSIONS = ("time", *(f"time:{bucket}" for bucket in TIME_BUCKETS))

OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
NEGATED = {"is_not": "is", "contains_not": "contains", "matches_not": "matches"}
RANGE_KEYWORDS = (
    *("day", "24h", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all"),
    "realtime",
)
COMPARISONS = ("previous_period", "year_over_year")

MAX_METRICS = 20
MAX_DIMENSIONS = 8
MAX_FILTER_DEPTH = 8
MAX_FILTERS = 100
MAX_CLAUSES = 1000
MAX_LIMIT = 10_000
# What one query's filters may ask of the engine: the bytes of every value together (a
# thousand page paths fit; a megabyte of needles does not), the regular expressions of
# the whole query, and each one's compiled size (RE2's program size: `^/blog/.*` is 12,
# a pattern of nested counted repetitions tens of thousands; the engine's time per row
# grows with it).
MAX_FILTER_BYTES = 65_536
MAX_PATTERNS = 20
MAX_PATTERN_PROGRAM = 2_000
# The first moment a range, or the period it is compared with, may start.
FIRST_MOMENT = dt.datetime(1970, 1, 2, tzinfo=dt.UTC)
# A CSV answer without a limit has every row, up to this many.
MAX_CSV_ROWS = 1_000_000

# What a breakdown shows for an empty value, as Plausible's API does; a filter clause
# naming it matches the empty value.
DIRECT = "Direct / None"
NOT_SET = "(not set)"


def empty_label(dimension: str) -> str:
    """The label of a dimension's empty value in results."""
    return DIRECT if dimension == "visit:source" else NOT_SET


class Include(BaseModel):
    """`include`: what the answer carries besides the rows."""

    model_config = ConfigDict(extra="forbid")

    total_rows: StrictBool = False
    time_labels: StrictBool = False
    compare: Literal["previous_period", "year_over_year"] | None = None
    # Plausible clients send it; hitstream has no imported data, so it is always false.
    imports: StrictBool = False


class Pagination(BaseModel):
    """`pagination`: a JSON answer has at most 10,000 rows (the default); a CSV answer
    without a limit has every row."""

    model_config = ConfigDict(extra="forbid")

    limit: StrictInt | None = Field(default=None, ge=1, le=MAX_LIMIT)
    offset: StrictInt = Field(default=0, ge=0, le=10_000_000)


class QueryBody(BaseModel):
    """The request body as sent; `parse` checks what it means."""

    model_config = ConfigDict(extra="forbid")

    site_id: StrictStr = Field(min_length=1, max_length=128)
    date_range: StrictStr | list[StrictStr] = Field(
        description=f"one of {', '.join(RANGE_KEYWORDS)}, or [from, to] as dates "
        "(YYYY-MM-DD, both days included) or date-times with offsets"
    )
    metrics: list[StrictStr] = Field(min_length=1, max_length=MAX_METRICS)
    dimensions: list[StrictStr] = Field(default_factory=list, max_length=MAX_DIMENSIONS)
    filters: list[Any] = Field(default_factory=list, max_length=MAX_FILTERS)
    order_by: list[list[StrictStr]] | None = Field(default=None, max_length=MAX_DIMENSIONS + 20)
    include: Include = Field(default_factory=Include)
    pagination: Pagination = Field(default_factory=Pagination)
    format: Literal["json", "csv"] = "json"


class QueryError(HitstreamError):
    """A query that cannot be answered, with the part of it at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Condition:
    """One simple filter: `op` (positive form), the dimension, its clauses."""

    op: Literal["is", "contains", "matches"]
    dimension: str
    clauses: tuple[str, ...]
    negated: bool = False
    case_sensitive: bool = True


@dataclass(frozen=True)
class Logic:
    """`and` / `or` over filters, or `not` of one."""

    op: Literal["and", "or", "not"]
    items: tuple[Filter, ...]


Filter = Condition | Logic


@dataclass(frozen=True)
class DateRange:
    """A range keyword, or explicit bounds: dates (whole days) or aware date-times."""

    keyword: str | None = None
    first: dt.date | dt.datetime | None = None
    last: dt.date | dt.datetime | None = None


@dataclass(frozen=True)
class Query:
    """A validated query, with the defaults filled in."""

    site_id: str
    date_range: DateRange
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    order_by: tuple[tuple[str, str], ...] = ()
    include: Include = field(default_factory=Include)
    pagination: Pagination = field(default_factory=Pagination)
    format: str = "json"

    @property
    def time_dimension(self) -> str | None:
        return next((d for d in self.dimensions if d in TIME_DIMENSIONS), None)

    @property
    def event_dimensions(self) -> tuple[str, ...]:
        return tuple(d for d in self.dimensions if is_event_dimension(d))


def is_event_dimension(name: str) -> bool:
    return name in EVENT_DIMENSIONS or name.startswith(PROPS_PREFIX)


def prop_key(name: str) -> str:
    """The property key of an `event:props:<key>` dimension."""
    return name.removeprefix(PROPS_PREFIX)


def _check_text(value: str, where: str) -> None:
    """Names and values as strict as event fields: nothing ingest would have refused."""
    if UNSAFE.search(value):
        raise QueryError(where, UNSAFE_MESSAGE)


def _check_cost(filters: tuple[Filter, ...]) -> None:
    """The filters' values and patterns within what one query may ask (see MAX_*)."""
    conditions = list(_conditions(filters))
    patterns = sum(len(item.clauses) for item in conditions if item.op == "matches")
    if patterns > MAX_PATTERNS:
        raise QueryError(
            "filters", f"{patterns} regular expressions; a query has at most {MAX_PATTERNS}"
        )
    size = sum(len(c.encode("utf-8")) for item in conditions for c in item.clauses)
    if size > MAX_FILTER_BYTES:
        raise QueryError(
            "filters", f"the filters' values take {size} bytes; at most {MAX_FILTER_BYTES}"
        )


def _conditions(filters: tuple[Filter, ...]) -> Iterator[Condition]:
    for item in filters:
        if isinstance(item, Logic):
            yield from _conditions(item.items)
        else:
            yield item


def _check_dimension(name: str, where: str, time_allowed: bool) -> None:
    _check_text(name, where)
    if name in TIME_DIMENSIONS:
        if not time_allowed:
            raise QueryError(where, f"{name!r} cannot be filtered on: set date_range instead")
        return
    if name in EVENT_DIMENSIONS or name in VISIT_DIMENSIONS:
        return
    if name.startswith(PROPS_PREFIX):
        key = prop_key(name)
        if not key or len(key) > MAX_PROP_KEY:
            raise QueryError(where, f"a property key is 1 to {MAX_PROP_KEY} characters")
        return
    if name == "event:goal":
        raise QueryError(where, "goals are not supported: use event:name (the event type)")
    raise QueryError(where, f"unknown dimension {name[:100]!r}")


def parse(body: QueryBody) -> Query:
    """Check what the query means; the first fault raises `QueryError`."""
    date_range = _date_range(body.date_range)
    for i, metric in enumerate(body.metrics):
        if metric not in METRICS:
            raise QueryError(f"metrics[{i}]", f"unknown metric {metric[:100]!r}")
    if len(set(body.metrics)) != len(body.metrics):
        raise QueryError("metrics", "a metric is listed twice")
    times = 0
    for i, dimension in enumerate(body.dimensions):
        _check_dimension(dimension, f"dimensions[{i}]", time_allowed=True)
        times += dimension in TIME_DIMENSIONS
    if len(set(body.dimensions)) != len(body.dimensions):
        raise QueryError("dimensions", "a dimension is listed twice")
    if times > 1:
        raise QueryError("dimensions", "at most one time dimension")
    event_dimensions = [d for d in body.dimensions if is_event_dimension(d)]
    for i, metric in enumerate(body.metrics):
        if metric in SESSION_METRICS and event_dimensions:
            raise QueryError(
                f"metrics[{i}]",
                f"{metric} is a metric of whole visits and cannot be broken down by the "
                f"event dimension {event_dimensions[0]}",
            )
        if metric == "percentage" and not body.dimensions:
            raise QueryError(f"metrics[{i}]", "percentage needs at least one dimension")
    filters = tuple(_filter(item, f"filters[{i}]", 1) for i, item in enumerate(body.filters))
    _check_cost(filters)
    order_by = _order_by(body)
    if body.include.time_labels and times == 0:
        raise QueryError("include.time_labels", "needs a time dimension")
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


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_range(value: str | list[str]) -> DateRange:
    if isinstance(value, str):
        if value not in RANGE_KEYWORDS:
            raise QueryError(
                "date_range", f"unknown range {value[:50]!r}: use {', '.join(RANGE_KEYWORDS)}"
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


def _filter(item: Any, where: str, depth: int) -> Filter:
    if depth > MAX_FILTER_DEPTH:
        raise QueryError(where, f"filters nest at most {MAX_FILTER_DEPTH} deep")
    if not isinstance(item, list) or not item or not isinstance(item[0], str):
        raise QueryError(where, "a filter is [operator, dimension, [clauses]] or [and|or|not, ...]")
    op = item[0]
    if op in ("and", "or"):
        if len(item) != 2 or not isinstance(item[1], list) or not item[1]:
            raise QueryError(where, f'"{op}" takes one non-empty list of filters')
        if len(item[1]) > MAX_FILTERS:
            raise QueryError(where, f"at most {MAX_FILTERS} filters in one list")
        return Logic(
            "and" if op == "and" else "or",
            tuple(_filter(sub, f"{where}[1][{i}]", depth + 1) for i, sub in enumerate(item[1])),
        )
    if op == "not":
        if len(item) != 2:
            raise QueryError(where, '"not" takes one filter')
        return Logic("not", (_filter(item[1], f"{where}[1]", depth + 1),))
    if op in ("has_done", "has_not_done"):
        raise QueryError(f"{where}[0]", f"{op} is not supported")
    if op not in OPERATORS:
        raise QueryError(f"{where}[0]", f"unknown operator {op[:50]!r}: use {', '.join(OPERATORS)}")
    if len(item) not in (3, 4):
        raise QueryError(where, "a filter is [operator, dimension, [clauses], {modifiers}?]")
    dimension, clauses = item[1], item[2]
    if not isinstance(dimension, str):
        raise QueryError(f"{where}[1]", "must be a dimension name")
    _check_dimension(dimension, f"{where}[1]", time_allowed=False)
    if (
        not isinstance(clauses, list)
        or not clauses
        or len(clauses) > MAX_CLAUSES
        or not all(isinstance(c, str) and len(c) <= MAX_PROP_VALUE for c in clauses)
    ):
        raise QueryError(
            f"{where}[2]",
            f"must be a list of 1 to {MAX_CLAUSES} strings of at most {MAX_PROP_VALUE} characters",
        )
    case_sensitive = True
    if len(item) == 4:
        modifiers = item[3]
        if not isinstance(modifiers, dict) or set(modifiers) - {"case_sensitive"}:
            raise QueryError(f"{where}[3]", 'the only modifier is {"case_sensitive": bool}')
        value = modifiers.get("case_sensitive", True)
        if not isinstance(value, bool):
            raise QueryError(f"{where}[3]", "case_sensitive is true or false")
        case_sensitive = value
    for i, clause in enumerate(clauses):
        _check_text(clause, f"{where}[2][{i}]")
    positive = NEGATED.get(op, op)
    if positive == "matches":
        for i, pattern in enumerate(clauses):
            _check_pattern(pattern_as_run(pattern, case_sensitive), f"{where}[2][{i}]")
    return Condition(
        op=positive,  # type: ignore[arg-type]
        dimension=dimension,
        clauses=tuple(clauses),
        negated=op in NEGATED,
        case_sensitive=case_sensitive,
    )


def pattern_as_run(pattern: str, case_sensitive: bool) -> str:
    """A `matches` clause as the engine runs it (its size is checked as run)."""
    return pattern if case_sensitive else "(?i)" + pattern


def _check_pattern(pattern: str, where: str) -> None:
    try:
        program = re2.compile(pattern).programsize
    except re2.error:
        raise QueryError(where, "is not a valid RE2 expression") from None
    if program > MAX_PATTERN_PROGRAM:
        raise QueryError(
            where,
            f"compiles to {program} RE2 instructions; at most {MAX_PATTERN_PROGRAM} "
            "(fewer alternatives or counted repetitions)",
        )


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

"""A stats query as the parser (reporting/parse.py) makes it and the compiler reads it,
and the error that refuses one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from foundation.errors import HitstreamError
from schemas.query import TIME_DIMENSIONS, Include, Pagination, is_event_dimension
from sites.goals import Goal


class QueryError(HitstreamError):
    """A query that cannot be answered, with the part of it at fault; `plausible` is
    Plausible's own message for the same fault, where it words one."""

    def __init__(self, field: str, message: str, plausible: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.plausible = plausible


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
    goals: tuple[Goal, ...] = ()  # the site's, when a goal is a dimension or filter

    @property
    def time_dimension(self) -> str | None:
        return next((d for d in self.dimensions if d in TIME_DIMENSIONS), None)

    @property
    def event_dimensions(self) -> tuple[str, ...]:
        return tuple(d for d in self.dimensions if is_event_dimension(d))

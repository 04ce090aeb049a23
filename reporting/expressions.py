"""The SQL of a query's dimensions: each one's raw value on a row (r<i>, what rows are
grouped by), and its label in results (d<i>), the empty value's label included. Values
are bound as parameters by a `Binder`; names (columns, functions, formats) come from the
tables here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reporting import goals
from schemas.query import (
    EVENT_DIMENSIONS,
    GOAL_DIMENSION,
    PROPS_PREFIX,
    TIME_DIMENSIONS,
    VISIT_DIMENSIONS,
)
from sites.goals import Goal

# What a breakdown shows for an empty value, as Plausible's API does; a filter clause
# naming it matches the empty value.
DIRECT = "Direct / None"
NOT_SET = "(not set)"
# Each time bucket: what rows are grouped by (cheap: numbers), and how a group's bucket
# is labelled afterwards, in ClickHouse's spelling of periods.FORMATS (minutes are %i).
BUCKETS = {
    "minute": ("toStartOfMinute({ts}, {{tz:String}})", "'%Y-%m-%d %H:%i:00'"),
    "hour": ("toStartOfHour({ts}, {{tz:String}})", "'%Y-%m-%d %H:00:00'"),
    "day": ("toDate({ts}, {{tz:String}})", "'%Y-%m-%d'"),
    "week": ("toMonday({ts}, {{tz:String}})", "'%Y-%m-%d'"),
    "month": ("toStartOfMonth({ts}, {{tz:String}})", "'%Y-%m-01'"),
}


def empty_label(dimension: str) -> str:
    """The label of a dimension's empty value in results."""
    return DIRECT if dimension == "visit:source" else NOT_SET


@dataclass
class Binder:
    """Names parameters as they are bound; holds the site's goals the query reads."""

    parameters: dict[str, Any] = field(default_factory=dict)
    goals: tuple[Goal, ...] = ()
    _completed: str = ""

    def bind(self, value: Any, type_: str) -> str:
        name = f"p{len(self.parameters)}"
        self.parameters[name] = value
        return f"{{{name}:{type_}}}"

    def completed(self) -> str:
        """The goals a row completes (goals.completed), bound once a query: each goal
        filter and the goal dimension share one expression, computed once a block."""
        if not self._completed:
            self._completed = goals.completed(self.goals, self.bind)
        return self._completed


@dataclass(frozen=True)
class Dimensions:
    """Each dimension's raw value on an event row and on a visit row, and its label
    over the grouped raw value r<i>."""

    event: list[str]
    visit: list[str]
    labelled: list[str]


def column(dimension: str, binder: Binder) -> str:
    """The raw value of a (non-time) dimension on a joined event row; a goal's is one row
    per goal the event completes (none: the row is not grouped)."""
    if dimension == GOAL_DIMENSION:
        return goals.completed_names(binder.completed(), binder.goals, binder.bind)
    if dimension in EVENT_DIMENSIONS:
        return EVENT_DIMENSIONS[dimension]
    if dimension.startswith(PROPS_PREFIX):
        return f"props[{binder.bind(dimension.removeprefix(PROPS_PREFIX), 'String')}]"
    return f"v_{VISIT_DIMENSIONS[dimension]}"


def label(dimension: str, raw: str) -> str:
    """A (non-time) dimension's label: its value, or its empty label."""
    return f"if({raw} = '', '{empty_label(dimension)}', toString({raw}))"


def time_label(bucket: str, raw: str) -> str:
    """A time bucket's label, as periods.labels spells it."""
    return f"formatDateTime({raw}, {BUCKETS[bucket][1]}, {{tz:String}})"


def dimensions(names: tuple[str, ...], bucket: str | None, binder: Binder) -> Dimensions:
    """The expressions of every dimension; `bucket` resolves the time one (day if None)."""
    out = Dimensions([], [], [])
    for i, dimension in enumerate(names):
        if dimension in TIME_DIMENSIONS:
            group = BUCKETS[bucket or "day"][0]
            out.event.append(group.format(ts="ts"))
            out.visit.append(group.format(ts="v_opened"))
            out.labelled.append(time_label(bucket or "day", f"r{i}"))
        else:
            raw = column(dimension, binder)
            out.event.append(raw)
            out.visit.append(raw)
            out.labelled.append(label(dimension, f"r{i}"))
    return out

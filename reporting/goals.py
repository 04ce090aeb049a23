"""Goals in a query: the `event:goal` dimension and filter over the site's goals (bound
as parameters), and what `conversion_rate` divides by. Plausible's rules
(`sql/where_builder.ex`, `special_metrics.ex`; docs/query-api.md, Goals)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import re2

from reporting.model import Condition, Filter, Logic, Query, QueryError
from schemas.query import GOAL_DIMENSION, PROPS_PREFIX, REVENUE_METRICS
from sites.goals import Goal, is_wildcard, page_regex

GOAL_DOCS = "https://plausible.io/docs/stats-api#filtering-by-goals"
# What binds a value as a parameter and names it in SQL (expressions.Binder.bind).
Bind = Callable[[Any, str], str]


def with_goals(query: Query, goals: Sequence[Goal]) -> Query:
    """The query with the site's goals; 400 for an `is` goal filter naming no goal."""
    names = {goal.display_name for goal in goals}
    lowered = {name.lower() for name in names}
    for i, item in enumerate(query.filters):
        for where, condition in _goal_conditions(item, f"filters[{i}]"):
            if condition.op != "is":
                continue
            for j, clause in enumerate(condition.clauses):
                known = clause in names or (
                    not condition.case_sensitive and clause.lower() in lowered
                )
                if not known:
                    raise QueryError(
                        f"{where}[2][{j}]",
                        f"Invalid filters. The goal `{clause[:200]}` is not configured for "
                        f"this site. Find out how to configure goals here: {GOAL_DOCS}",
                    )
    return dataclasses.replace(query, goals=tuple(goals))


def uses_goals(query: Query) -> bool:
    """Whether the query needs the site's goals (a goal dimension or filter, or a revenue
    metric: its currency is a revenue goal's)."""
    if any(m in REVENUE_METRICS for m in query.metrics):
        return True
    return GOAL_DIMENSION in query.dimensions or any(
        True for item in query.filters for _ in _goal_conditions(item, "")
    )


def _goal_conditions(item: Filter, where: str) -> list[tuple[str, Condition]]:
    """The goal conditions in a filter, each with where it is (`filters[0][1][2]`)."""
    if isinstance(item, Logic):
        if item.op == "not":
            return _goal_conditions(item.items[0], f"{where}[1]")
        return [
            found
            for k, sub in enumerate(item.items)
            for found in _goal_conditions(sub, f"{where}[1][{k}]")
        ]
    return [(where, item)] if item.dimension == GOAL_DIMENSION else []


def selected(condition: Condition, goals: Sequence[Goal]) -> list[Goal]:
    """The goals whose display name the condition's clauses name (positive form)."""

    def hit(name: str, clause: str) -> bool:
        if condition.op == "matches":
            flags = "" if condition.case_sensitive else "(?i)"
            return re2.search(flags + clause, name) is not None
        if not condition.case_sensitive:
            name, clause = name.lower(), clause.lower()
        return name == clause if condition.op == "is" else clause in name

    return [g for g in goals if any(hit(g.display_name, c) for c in condition.clauses)]


def completed(goals: Sequence[Goal], bind: Bind) -> str:
    """The goals an event row completes, as an SQL Array(UInt16) of their 1-based places
    in `goals` (an event completes every goal it matches): event goals by name equality,
    page goals by path equality or, with `*`, by page_regex, pageviews only.

    A query builds this once over all the site's goals (Binder.completed): every goal
    filter then asks which places it holds, so neither the patterns nor their compiled
    set grow with the filters a client sends."""
    places = _places(goals)
    events = [g for g in goals if g.event_name]
    exact = [g for g in goals if g.page_path and not is_wildcard(g.page_path)]
    wild = [g for g in goals if g.page_path and is_wildcard(g.page_path)]
    strings, numbers = "Array(String)", "Array(UInt16)"

    def at(chosen: list[Goal]) -> str:
        return bind([places[id(g)] for g in chosen], numbers)

    parts = []
    if events:
        names = bind([g.event_name for g in events], strings)
        parts.append(
            f"if(pv, [], arrayFilter(x -> x != 0, [{at(events)}[indexOf({names}, event_type)]]))"
        )
    if exact:
        paths = bind([g.page_path for g in exact], strings)
        parts.append(f"if(pv, arrayFilter(x -> x != 0, [{at(exact)}[indexOf({paths}, path)]]), [])")
    if wild:
        patterns = bind([page_regex(g.page_path) for g in wild], strings)
        parts.append(
            f"if(pv, arrayMap(i -> {at(wild)}[i], multiMatchAllIndices(path, {patterns})), [])"
        )
    if not parts:
        return "CAST([], 'Array(UInt16)')"
    return parts[0] if len(parts) == 1 else f"arrayConcat({', '.join(parts)})"


def completes_any(completed: str, chosen: Sequence[Goal], goals: Sequence[Goal], bind: Bind) -> str:
    """Whether a row's completed goals (see `completed`) hold any of `chosen`; a set
    lookup per completed goal, whatever the number chosen."""
    if not chosen:
        return "0"
    places = _places(goals)
    picked = sorted(places[id(g)] for g in chosen)
    return f"arrayExists(i -> i IN {bind(picked, 'Array(UInt16)')}, {completed})"


def _places(goals: Sequence[Goal]) -> dict[int, int]:
    """Each goal's 1-based place in `goals` (what `completed` holds), by the goal's id()."""
    return {id(goal): i for i, goal in enumerate(goals, start=1)}


def completed_names(completed: str, goals: Sequence[Goal], bind: Bind) -> str:
    """The display names of a row's completed goals, one row each (arrayJoin): the
    `event:goal` dimension."""
    shown = bind([g.display_name for g in goals], "Array(String)")
    return f"arrayJoin(arrayMap(i -> {shown}[i], {completed}))"


def without_goal_filters(filters: tuple[Filter, ...]) -> tuple[Filter, ...]:
    """The top-level filters conversion_rate's whole keeps: all but those on goals and
    event properties (Plausible's)."""
    return tuple(
        item
        for item in filters
        if isinstance(item, Logic)
        or not (item.dimension == GOAL_DIMENSION or item.dimension.startswith(PROPS_PREFIX))
    )

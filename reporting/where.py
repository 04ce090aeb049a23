"""A query's filters as one SQL condition over a joined event row (visit dimensions as
v_<name>); every value is bound as a parameter."""

from __future__ import annotations

from reporting import goals
from reporting.expressions import Binder, column, empty_label
from reporting.filters import pattern_as_run
from reporting.model import Condition, Filter, Logic
from schemas.query import GOAL_DIMENSION

# multiSearchAny's most needles in one call.
NEEDLES = 255


def match(filters: tuple[Filter, ...], binder: Binder) -> str:
    """All filters together ("1" without any)."""
    return " AND ".join(f"({condition(item, binder)})" for item in filters) or "1"


def condition(item: Filter, binder: Binder) -> str:
    """One filter, logic ones recursively."""
    if isinstance(item, Logic):
        parts = [condition(sub, binder) for sub in item.items]
        if item.op == "not":
            return f"NOT ({parts[0]})"
        return "(" + f" {item.op.upper()} ".join(f"({p})" for p in parts) + ")"
    if item.dimension == GOAL_DIMENSION:
        chosen = goals.selected(item, binder.goals)
        sql = goals.completes_any(binder.completed(), chosen, binder.goals, binder.bind)
    else:
        sql = _SIMPLE[item.op](item, column(item.dimension, binder), binder)
    return f"NOT ({sql})" if item.negated else sql


def _is(item: Condition, column: str, binder: Binder) -> str:
    empty = empty_label(item.dimension)
    values = ["" if c == empty else c for c in item.clauses]
    if item.case_sensitive:
        return f"{column} IN {binder.bind(values, 'Array(String)')}"
    lowered = [v.lower() for v in values]
    return f"lowerUTF8({column}) IN {binder.bind(lowered, 'Array(String)')}"


def _contains(item: Condition, column: str, binder: Binder) -> str:
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


def _matches(item: Condition, column: str, binder: Binder) -> str:
    calls = [
        f"match({column}, {binder.bind(pattern_as_run(p, item.case_sensitive), 'String')})"
        for p in item.clauses
    ]
    return "(" + " OR ".join(calls) + ")"


_SIMPLE = {"is": _is, "contains": _contains, "matches": _matches}

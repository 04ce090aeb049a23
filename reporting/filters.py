"""A query's filters checked into `Condition`s and `Logic`s: their shape, dimensions,
clauses and modifiers, and what they may cost the engine. Every refusal names the
part at fault (`filters[0][2][1]`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import re2

from reporting.expressions import empty_label
from reporting.model import Condition, Filter, Logic, QueryError
from schemas.event import MAX_PROP_KEY, MAX_PROP_VALUE
from schemas.names import source_filter_values
from schemas.query import (
    EVENT_DIMENSIONS,
    GOAL_DIMENSION,
    MAX_FILTERS,
    OPERATORS,
    PROPS_PREFIX,
    TIME_DIMENSIONS,
    UNAVAILABLE_DIMENSIONS,
    VISIT_DIMENSIONS,
    prop_key,
)
from schemas.urls import UNSAFE, UNSAFE_MESSAGE
from sites.goals import MAX_DISPLAY_NAME

MAX_FILTER_DEPTH = 8
MAX_CLAUSES = 1000
# What one query's filters may ask of the engine: the bytes of every value together (a
# thousand page paths fit; a megabyte of needles does not), the regular expressions of
# the whole query, and each one's compiled size (RE2's program size: `^/blog/.*` is 12,
# a pattern of nested counted repetitions tens of thousands; the engine's time per row
# grows with it).
MAX_FILTER_BYTES = 65_536
MAX_PATTERNS = 20
MAX_PATTERN_PROGRAM = 2_000
# Dimensions whose filter values are integers in Plausible (GeoNames ids, segment ids);
# every other dimension takes strings only, as Plausible's query parser has it.
INTEGER_VALUED = ("visit:city", "segment")
# Each negated operator and the positive one it negates.
NEGATED = {"is_not": "is", "contains_not": "contains", "matches_not": "matches"}


def check_text(value: str, where: str) -> None:
    """Names and values as strict as event fields: nothing ingest would have refused."""
    if UNSAFE.search(value):
        raise QueryError(where, UNSAFE_MESSAGE)


def check_dimension(name: str, where: str, time_allowed: bool) -> None:
    """A known dimension (time ones only where `time_allowed`: not in filters)."""
    check_text(name, where)
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
    if name == GOAL_DIMENSION:
        return
    if name in UNAVAILABLE_DIMENSIONS:
        raise QueryError(where, UNAVAILABLE_DIMENSIONS[name])
    raise QueryError(where, f"unknown dimension {name[:100]!r}")


def parse_filters(items: list[Any]) -> tuple[Filter, ...]:
    """Every filter of `filters`, then their cost (see MAX_*)."""
    filters = tuple(parse_filter(item, f"filters[{i}]", 1) for i, item in enumerate(items))
    check_cost(filters)
    return filters


def parse_filter(item: Any, where: str, depth: int) -> Filter:
    """One filter as sent: [operator, dimension, [clauses], {modifiers}?] or a logic one."""
    if depth > MAX_FILTER_DEPTH:
        raise QueryError(where, f"filters nest at most {MAX_FILTER_DEPTH} deep")
    if not isinstance(item, list) or not item or not isinstance(item[0], str):
        raise QueryError(where, "a filter is [operator, dimension, [clauses]] or [and|or|not, ...]")
    if item[0] in ("and", "or", "not"):
        return _logic(item, where, depth)
    return _condition(item, where)


def _logic(item: list[Any], where: str, depth: int) -> Logic:
    op = item[0]
    if op == "not":
        if len(item) != 2:
            raise QueryError(where, '"not" takes one filter')
        return Logic("not", (parse_filter(item[1], f"{where}[1]", depth + 1),))
    if len(item) != 2 or not isinstance(item[1], list) or not item[1]:
        raise QueryError(where, f'"{op}" takes one non-empty list of filters')
    if len(item[1]) > MAX_FILTERS:
        raise QueryError(where, f"at most {MAX_FILTERS} filters in one list")
    return Logic(
        "and" if op == "and" else "or",
        tuple(parse_filter(sub, f"{where}[1][{i}]", depth + 1) for i, sub in enumerate(item[1])),
    )


def _condition(item: list[Any], where: str) -> Condition:
    op = item[0]
    if op in ("has_done", "has_not_done"):
        raise QueryError(f"{where}[0]", f"{op} is not supported")
    if op not in OPERATORS:
        raise QueryError(f"{where}[0]", f"unknown operator {op[:50]!r}: use {', '.join(OPERATORS)}")
    if len(item) not in (3, 4):
        raise QueryError(where, "a filter is [operator, dimension, [clauses], {modifiers}?]")
    dimension = item[1]
    if not isinstance(dimension, str):
        raise QueryError(f"{where}[1]", "must be a dimension name")
    check_dimension(dimension, f"{where}[1]", time_allowed=False)
    clauses = clause_values(item, f"{where}[2]")
    case_sensitive = _case_sensitive(item[3], f"{where}[3]") if len(item) == 4 else True
    for i, clause in enumerate(clauses):
        check_text(clause, f"{where}[2][{i}]")
    positive = NEGATED.get(op, op)
    if dimension == "visit:country" and positive == "is":
        _check_countries(clauses, f"{where}[2]")
    if positive == "matches":
        for i, pattern in enumerate(clauses):
            check_pattern(pattern_as_run(pattern, case_sensitive), f"{where}[2][{i}]")
    if dimension == "visit:source" and positive == "is":
        clauses = source_filter_values(clauses, case_sensitive)  # `Twitter`: X (Twitter)
    return Condition(
        op=positive,
        dimension=dimension,
        clauses=clauses,
        negated=op in NEGATED,
        case_sensitive=case_sensitive,
    )


def clause_values(item: list[Any], where: str) -> tuple[str, ...]:
    """A condition's values as text: strings, or for the INTEGER_VALUED dimensions
    integers (all of them, as Plausible takes them), compared as their decimal text."""
    clauses = item[2]
    if not isinstance(clauses, list) or not clauses or len(clauses) > MAX_CLAUSES:
        raise QueryError(where, f"must be a list of 1 to {MAX_CLAUSES} values")
    if item[1] in INTEGER_VALUED and all(
        isinstance(c, int) and not isinstance(c, bool) and abs(c) < 2**63 for c in clauses
    ):
        return tuple(str(c) for c in clauses)
    longest = MAX_DISPLAY_NAME if item[1] == GOAL_DIMENSION else MAX_PROP_VALUE
    if not all(isinstance(c, str) and len(c) <= longest for c in clauses):
        strings = f"strings of at most {longest} characters"
        raise QueryError(
            where,
            f"must be all integers or all {strings}"
            if item[1] in INTEGER_VALUED
            else f'must be {strings} (a number as text, e.g. "42")',
            f"Invalid filter '{json.dumps(item, ensure_ascii=False)[:200]}'.",
        )
    return tuple(clauses)


def _check_countries(clauses: tuple[str, ...], where: str) -> None:
    """`is`/`is_not` on visit:country take ISO codes, as Plausible refuses other values,
    or the label of no country (a v1 breakdown leaves those rows out with it)."""
    for i, clause in enumerate(clauses):
        if len(clause) != 2 and clause != empty_label("visit:country"):
            raise QueryError(
                f"{where}[{i}]",
                "a country is its 2-letter ISO 3166 code (e.g. DE)",
                "Invalid visit:country filter, visit:country needs to be a valid 2-letter "
                "country code.",
            )


def _case_sensitive(modifiers: Any, where: str) -> bool:
    if not isinstance(modifiers, dict) or set(modifiers) - {"case_sensitive"}:
        raise QueryError(where, 'the only modifier is {"case_sensitive": bool}')
    value = modifiers.get("case_sensitive", True)
    if not isinstance(value, bool):
        raise QueryError(where, "case_sensitive is true or false")
    return value


def pattern_as_run(pattern: str, case_sensitive: bool) -> str:
    """A `matches` clause as the engine runs it (its size is checked as run)."""
    return pattern if case_sensitive else "(?i)" + pattern


def check_pattern(pattern: str, where: str) -> None:
    """A valid RE2 expression within MAX_PATTERN_PROGRAM instructions."""
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


def check_cost(filters: tuple[Filter, ...]) -> None:
    """The filters' values and patterns within what one query may ask (see MAX_*)."""
    conditions = list(conditions_of(filters))
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


def conditions_of(filters: tuple[Filter, ...]) -> Iterator[Condition]:
    """Every simple condition, however deep in logic filters."""
    for item in filters:
        if isinstance(item, Logic):
            yield from conditions_of(item.items)
        else:
            yield item

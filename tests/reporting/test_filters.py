"""Filters checked into Conditions and Logics, with no engine."""

from __future__ import annotations

from typing import Any

import pytest

from reporting.filters import (
    MAX_FILTER_BYTES,
    MAX_FILTER_DEPTH,
    MAX_PATTERNS,
    check_dimension,
    clause_values,
    conditions_of,
    parse_filter,
    parse_filters,
    pattern_as_run,
)
from reporting.model import Condition, Logic, QueryError


def fault(item: Any) -> str:
    with pytest.raises(QueryError) as caught:
        parse_filter(item, "filters[0]", 1)
    return caught.value.field


def test_negated_operators_are_their_positive_form_negated() -> None:
    assert parse_filter(["contains_not", "visit:source", ["goo"]], "f", 1) == Condition(
        "contains", "visit:source", ("goo",), negated=True
    )


def test_twitter_is_an_alias_of_x_twitter_for_the_source() -> None:
    """Older Plausible stored `Twitter` (its v1 docs show it); it now stores `X (Twitter)`."""
    assert parse_filter(["is", "visit:source", ["Twitter"]], "f", 1) == Condition(
        "is", "visit:source", ("Twitter", "X (Twitter)")
    )
    assert parse_filter(
        ["is_not", "visit:source", ["twitter"], {"case_sensitive": False}], "f", 1
    ) == (
        Condition(
            "is", "visit:source", ("twitter", "X (Twitter)"), negated=True, case_sensitive=False
        )
    )
    assert parse_filter(["is", "visit:source", ["twitter"]], "f", 1).clauses == ("twitter",)
    assert parse_filter(["is", "visit:utm_source", ["Twitter"]], "f", 1).clauses == ("Twitter",)


def test_the_case_modifier() -> None:
    item = ["matches", "event:props:plan", ["^pro"], {"case_sensitive": False}]
    assert parse_filter(item, "f", 1) == Condition(
        "matches", "event:props:plan", ("^pro",), case_sensitive=False
    )
    assert pattern_as_run("^pro", False) == "(?i)^pro" and pattern_as_run("^pro", True) == "^pro"


def test_logic_filters_nest() -> None:
    item = ["or", [["is", "event:page", ["/a"]], ["not", ["is", "visit:os", ["Linux"]]]]]
    parsed = parse_filter(item, "f", 1)
    assert parsed == Logic(
        "or",
        (
            Condition("is", "event:page", ("/a",)),
            Logic("not", (Condition("is", "visit:os", ("Linux",)),)),
        ),
    )
    assert [c.dimension for c in conditions_of((parsed,))] == ["event:page", "visit:os"]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ("is", "filters[0]"),
        (["and", []], "filters[0]"),
        (["not", ["is", "event:page", ["/"]], ["is", "event:page", ["/"]]], "filters[0]"),
        (["or", [["is", "event:page", ["/"]], ["no", "event:page", ["/"]]]], "filters[0][1][1][0]"),
        (["has_done", "event:name", ["x"]], "filters[0][0]"),
        (["is", "event:page"], "filters[0]"),
        (["is", 3, ["/"]], "filters[0][1]"),
        (["is", "event:props:", ["/"]], "filters[0][1]"),
        (["is", "event:page", []], "filters[0][2]"),
        (["is", "event:page", ["/", "a\x00"]], "filters[0][2][1]"),
        (["is", "event:page", ["/"], {"case": True}], "filters[0][3]"),
        (["is", "event:page", ["/"], {"case_sensitive": 1}], "filters[0][3]"),
        (["matches", "event:page", ["(a"]], "filters[0][2][0]"),
        (["matches", "event:page", ["/", "((a{1,100}){1,100}){1,100}"]], "filters[0][2][1]"),
    ],
)  # fmt: skip
def test_each_fault_names_its_part(item: Any, field: str) -> None:
    assert fault(item) == field


def test_integer_values_where_plausible_takes_them() -> None:
    """Plausible's parser takes integers for visit:city (GeoNames ids) and segments, all
    of a filter's values alike; they are compared as their decimal text. Every other
    dimension takes strings only (a property's number is sent as text, e.g. "42")."""
    assert clause_values(["is", "visit:city", [2643743, 588409]], "f") == ("2643743", "588409")
    assert clause_values(["is", "visit:city", ["2643743"]], "f") == ("2643743",)
    for item in (
        ["is", "visit:city", [2643743, "588409"]],
        ["is", "visit:city", [True]],
        ["is", "event:props:plan", [42]],
        ["is", "event:page", [1.5]],
    ):
        with pytest.raises(QueryError) as caught:
            clause_values(item, "filters[0][2]")
        assert caught.value.field == "filters[0][2]"
    assert caught.value.plausible == """Invalid filter '["is", "event:page", [1.5]]'."""
    # hitstream has city names, no GeoNames ids: the refusal names the dimension and why.
    assert fault(["is", "visit:city", [2643743]]) == "filters[0][1]"
    with pytest.raises(QueryError) as caught:
        check_dimension("visit:city", "dimensions[0]", time_allowed=True)
    assert caught.value.field == "dimensions[0]"
    assert "GeoNames id" in str(caught.value) and "visit:city_name" in str(caught.value)


def test_countries_are_two_letter_codes() -> None:
    assert fault(["is_not", "visit:country", ["DE", "Germany"]]) == "filters[0][2][1]"
    assert parse_filter(["contains", "visit:country", ["D"]], "f", 1) == Condition(
        "contains", "visit:country", ("D",)
    )


def test_a_bad_modifier_is_named_before_a_bad_clause() -> None:
    assert fault(["is", "event:page", ["a\x00"], {"case": True}]) == "filters[0][3]"


def test_depth_is_bounded() -> None:
    item: Any = ["is", "event:page", ["/"]]
    for _ in range(MAX_FILTER_DEPTH - 1):
        item = ["not", item]
    parse_filter(item, "filters[0]", 1)
    assert fault(["not", item]).startswith("filters[0]")


def test_the_cost_of_all_filters_together_is_bounded() -> None:
    patterns = [["matches", "event:page", ["^/a"]] for _ in range(MAX_PATTERNS + 1)]
    with pytest.raises(QueryError, match="regular expressions") as caught:
        parse_filters(patterns)
    assert caught.value.field == "filters"
    values = [["is", "event:page", ["x" * 1000] * 66]]
    assert sum(len(v) for v in values[0][2]) > MAX_FILTER_BYTES
    with pytest.raises(QueryError, match="bytes"):
        parse_filters(values)
    assert len(parse_filters(patterns[:MAX_PATTERNS])) == MAX_PATTERNS

"""Filters as SQL conditions, their values bound as parameters (no engine)."""

from __future__ import annotations

from reporting.expressions import Binder
from reporting.model import Condition, Logic
from reporting.where import NEEDLES, condition, match


def test_no_filters_match_everything() -> None:
    assert match((), Binder()) == "1"


def test_is_binds_its_values_and_the_empty_label_means_empty() -> None:
    binder = Binder()
    item = Condition("is", "visit:source", ("Direct / None", "goo"))
    assert condition(item, binder) == "v_source IN {p0:Array(String)}"
    assert binder.parameters == {"p0": ["", "goo"]}


def test_case_insensitive_is_compares_lowercase() -> None:
    binder = Binder()
    item = Condition("is", "event:page", ("/A",), negated=True, case_sensitive=False)
    assert condition(item, binder) == "NOT (lowerUTF8(path) IN {p0:Array(String)})"
    assert binder.parameters == {"p0": ["/a"]}


def test_contains_searches_needles_in_calls_of_at_most_255() -> None:
    binder = Binder()
    needles = tuple(str(i) for i in range(NEEDLES + 1))
    sql = condition(Condition("contains", "event:page", needles, case_sensitive=False), binder)
    assert sql == (
        "(multiSearchAnyCaseInsensitiveUTF8(path, {p0:Array(String)}) OR "
        "multiSearchAnyCaseInsensitiveUTF8(path, {p1:Array(String)}))"
    )
    assert [len(v) for v in binder.parameters.values()] == [NEEDLES, 1]
    assert condition(Condition("contains", "event:page", ("a", "")), Binder()) == "1"


def test_matches_runs_each_pattern_as_checked() -> None:
    binder = Binder()
    item = Condition("matches", "event:props:plan", ("^a", "b$"), case_sensitive=False)
    assert condition(item, binder) == (
        "(match(props[{p0:String}], {p1:String}) OR match(props[{p0:String}], {p2:String}))"
    )
    assert binder.parameters == {"p0": "plan", "p1": "(?i)^a", "p2": "(?i)b$"}


def test_logic_and_several_filters() -> None:
    binder = Binder()
    page = Condition("is", "event:page", ("/",))
    either = Logic("or", (page, Logic("not", (page,))))
    assert match((either, page), binder) == (
        "(((path IN {p0:Array(String)}) OR (NOT (path IN {p1:Array(String)}))))"
        " AND (path IN {p2:Array(String)})"
    )

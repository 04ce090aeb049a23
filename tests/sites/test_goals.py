"""Goals as records: Plausible's defaults, limits and messages, ids, and wildcards."""

from __future__ import annotations

import re

import pytest

from sites.goals import (
    MAX_GOALS,
    Goal,
    GoalError,
    find_or_add,
    goal_from_json,
    goal_id_of,
    goal_json,
    is_wildcard,
    make_goal,
    page_regex,
)


def test_an_event_goal_is_trimmed_and_named_after_its_event() -> None:
    goal = make_goal("s", event_name="  Signup ", currency="eur")
    assert (goal.goal_type, goal.event_name, goal.display_name) == ("event", "Signup", "Signup")
    assert goal.currency == "EUR" and goal.page_path == ""
    assert goal.goal_id == goal_id_of("s", "Signup", "") < 2**53


def test_a_page_goal_gets_a_leading_slash_a_visit_name_and_no_currency() -> None:
    goal = make_goal("s", page_path=" blog/** ", currency="USD", display_name="")
    assert (goal.goal_type, goal.page_path, goal.display_name) == (
        "page",
        "/blog/**",
        "Visit /blog/**",
    )
    assert goal.currency == "" and goal.event_name == ""
    assert make_goal("s", page_path="/x", display_name=" Reads ").display_name == "Reads"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"event_name": "  "}, "event_name", "can't be blank"),
        ({"event_name": "x" * 121}, "event_name", "should be at most 120 character(s)"),
        (
            {"event_name": "pageleave"},
            "event_name",
            "The event name 'pageleave' is reserved and cannot be used as a goal",
        ),
        ({"event_name": "Buy", "currency": "XYZ"}, "currency", "is invalid"),
        ({"page_path": " "}, "page_path", "can't be blank"),
        ({"page_path": "/" + "a" * 2000}, "page_path", "should be at most 2000 character(s)"),
    ],
)
def test_bad_goals_are_refused_with_plausibles_messages(
    fields: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(GoalError) as refused:
        make_goal("s", **fields)
    assert (refused.value.field, refused.value.message) == (field, message)


def test_a_page_goal_has_at_most_ten_wildcards_and_alternatives() -> None:
    # Every wildcard goal of a site is compiled into the set each goal query matches
    # paths against: its size is bounded where goals are made.
    ten = "/a*/b**/c*|/d*|/e*|/f*|/g"  # six runs of `*`, four `|`
    assert make_goal("s", page_path=ten).page_path == ten
    for path in ("/a*" * 11, "/a*" * 6 + "|/b" * 5, "|".join(["/x"] * 12)):
        with pytest.raises(GoalError) as refused:
            make_goal("s", page_path=path)
        assert refused.value.message == (
            "should have at most 10 wildcards (`*`) and alternatives (`|`)"
        )


def test_find_or_add_returns_the_existing_goal_as_it_is() -> None:
    first = make_goal("s", event_name="Signup", display_name="Sign-ups")
    again = make_goal("s", event_name="Signup", display_name="Other name")
    assert find_or_add([first], again) == (first, True)
    new, found = find_or_add([first], make_goal("s", page_path="/x"))
    assert not found and new.page_path == "/x"


def test_find_or_add_refuses_another_currency_a_taken_name_and_goal_1001() -> None:
    buy = make_goal("s", event_name="Buy", currency="USD")
    with pytest.raises(GoalError, match=r"'Buy' \(with currency: USD\) has already been taken"):
        find_or_add([buy], make_goal("s", event_name="Buy", currency="EUR"))
    with pytest.raises(GoalError, match=r"'Buy' \(with currency: none\)"):
        find_or_add([make_goal("s", event_name="Buy")], buy)
    with pytest.raises(GoalError, match="display_name: has already been taken"):
        find_or_add([buy], make_goal("s", event_name="Other", display_name="Buy"))
    full = [make_goal("s", event_name=f"e{n}") for n in range(MAX_GOALS)]
    with pytest.raises(GoalError, match="Maximum number of goals reached"):
        find_or_add(full, make_goal("s", event_name="one more"))
    assert find_or_add(full, make_goal("s", event_name="e7"))[1], "an existing one is still found"


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("/blog/*", ["/blog/", "/blog/a", "/blog/a/b"], ["/blog", "/blo", "/x/blog/a"]),
        ("/blog/**", ["/blog/a/b/c"], ["/about"]),
        ("/*/pricing", ["/en/pricing", "/a/b/pricing"], ["/pricing", "/en/pricing/x"]),
        ("/a.b+c*", ["/a.b+c", "/a.b+cd"], ["/aXb+c", "/a.bbc"]),
        ("/a*|/b*", ["/a1", "/b2"], ["/c"]),
    ],
)
def test_wildcards_match_any_characters_as_plausibles_page_regex(
    pattern: str, matching: list[str], not_matching: list[str]
) -> None:
    assert is_wildcard(pattern)
    regex = re.compile(page_regex(pattern))
    assert all(regex.search(path) for path in matching), matching
    assert not any(regex.search(path) for path in not_matching), not_matching


def test_the_cached_form_round_trips() -> None:
    goal = make_goal("s", event_name="Buy", currency="USD")
    assert goal_from_json(goal_json(goal)) == goal
    gone = Goal("s", 5, page_path="/x", display_name="Visit /x", deleted=True)
    assert goal_from_json(goal_json(gone)).deleted


@pytest.mark.parametrize("field", ["event_name", "page_path", "display_name"])
def test_control_bidi_and_surrogate_characters_are_refused(field: str) -> None:
    sent = {"event_name": "Signup", field: "Sign\u202eup"}
    with pytest.raises(GoalError) as refused:
        make_goal("site", **sent)
    assert refused.value.field == field

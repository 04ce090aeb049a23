"""v1 filter strings as v2 filters (Plausible's rules, hitstream's empty labels)."""

from __future__ import annotations

import pytest
import re2

from foundation.http import APIError
from reporting.legacy_filters import check_goals, translate, wildcard
from reporting.parse import parse_filters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, []),
        ("", []),
        ("visit:source==Google", [["is", "visit:source", ["Google"]]]),
        (" visit:source == Google ; event:page != /blog ",
         [["is", "visit:source", ["Google"]], ["is_not", "event:page", ["/blog"]]]),
        ("visit:browser==Chrome|Firefox", [["is", "visit:browser", ["Chrome", "Firefox"]]]),
        # a negated list is read as a positive one (Plausible: "one value at a time")
        ("visit:browser!=Chrome|Firefox", [["is", "visit:browser", ["Chrome", "Firefox"]]]),
        (r"event:props:title==a\|b|c", [["is", "event:props:title", ["a|b", "c"]]]),
        ("event:page==/blog*", [["matches", "event:page", ["^(?:/blog.*)$"]]]),
        ("event:page!=/blog/**", [["matches_not", "event:page", ["^(?:/blog/.*)$"]]]),
        ("visit:source==Direct / None", [["is", "visit:source", ["Direct / None"]]]),
        ("visit:referrer==Direct / None", [["is", "visit:referrer", ["(not set)"]]]),
        ("event:props:plan==(none)", [["is", "event:props:plan", ["(not set)"]]]),
        ("visit:utm_source==(not set)", [["is", "visit:utm_source", ["(not set)"]]]),
        # dropped silently: not two pieces, or a country that is not two letters
        ("visit:source", []),
        ("visit:source==a==b", []),
        ("visit:country==DEU", []),
        ("visit:country==DE|FR;visit:country==France", [["is", "visit:country", ["DE", "FR"]]]),
        ("event:hostname==example.com", [["is", "event:hostname", ["example.com"]]]),
    ],
)  # fmt: skip
def test_translate(text: str | None, expected: list[list[object]]) -> None:
    assert translate(text) == expected
    parse_filters(expected)  # v2 takes what v1 makes


def test_wildcards_match_any_characters_slashes_included() -> None:
    pattern = re2.compile(wildcard("/blog/*"))
    assert pattern.search("/blog/2024/01/post")
    assert not pattern.search("/blogs")
    assert not pattern.search("/x/blog/a")
    either = re2.compile(wildcard("/a*|/b*"))
    assert either.search("/a1") and either.search("/b/2")
    assert not either.search("/c/b")  # anchored on every alternative
    literal = re2.compile(wildcard(r"/q?x=(1).*|\|"))
    assert literal.search("/q?x=(1).zz|") and not literal.search("/qx=1.zz")


def test_unknown_filter_properties_and_goals_in_plausibles_words() -> None:
    with pytest.raises(APIError) as caught:
        translate("visit:source==Google;visit:town==Paris")
    assert caught.value.error == (
        "Invalid filter property 'visit:town'. Please provide a valid filter property: "
        "https://plausible.io/docs/stats-api#properties"
    )
    with pytest.raises(APIError) as caught:
        translate("visit:source==Google;visit:city==2988507")
    assert caught.value.error.startswith("visit:city is a GeoNames id")


def test_goal_filters_are_is_and_name_goals_the_site_has() -> None:
    # `!=` and `*` are not read for goals: a page goal's name holds a `*`.
    goals = translate("event:goal!=Signup|Visit /blog/*|A\\|B")
    assert goals == [["is", "event:goal", ["Signup", "Visit /blog/*", "A|B"]]]
    check_goals(goals, {"Signup", "Visit /blog/*", "A|B"})
    with pytest.raises(APIError) as caught:
        check_goals(goals, {"Visit /blog/*", "A|B"})
    assert caught.value.error == (
        "The goal `Signup` is not configured for this site. Find out how to configure goals "
        "here: https://plausible.io/docs/stats-api#filtering-by-goals"
    )
    with pytest.raises(APIError) as caught:
        check_goals(goals, {"Signup"})
    assert caught.value.error == (
        "The pageview goal for the pathname `/blog/*` is not configured for this site. Find "
        "out how to configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals"
    )

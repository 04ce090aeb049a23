"""Plausible's Stats API v1 filter syntax (`visit:source==Google;event:page==/blog*`)
as hitstream's v2 filters (`["is", "visit:source", ["Google"]]`), which the v2 parser
then checks as any query's.

The rules are Plausible's (`plausible/analytics` lib/plausible/stats/filters/
stats_api_filter_parser.ex and its legacy predecessor; `plausible/docs`
stats-api-v1.md "Filtering"): `;` joins filters with AND; each is `name==value` or
`name!=value`; `|` lists values (`\\|` is a literal bar); `*` and `**` match any
characters (slashes included); a filter that is not two pieces is dropped, as is a
`visit:country` value that is not two letters. A negated list is read as a positive one
(Plausible does the same: "exclude only one value at a time"). An `event:goal` filter is
always `is` (`|` lists goals; `!=` and `*` are not read), and names goals the site has
(check_goals).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from reporting.expressions import empty_label
from reporting.legacy_params import DOCS, bad, known_property
from schemas.query import GOAL_DIMENSION, UNAVAILABLE_DIMENSIONS

_UNESCAPED_BAR = re.compile(r"(?<!\\)\|")
# Characters RE2 reads as syntax, escaped in a wildcard's literal parts.
_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")
# Plausible's spellings of an empty value: `(none)` for a property, `(not set)` for any.
_EMPTY = ("(not set)", "(none)")
_DIRECT = "Direct / None"


def translate(text: str | None) -> list[list[Any]]:
    """The v2 filters of a v1 `filters` string (an empty list for none)."""
    out: list[list[Any]] = []
    for part in (text or "").split(";"):
        part = part.strip()
        pieces = [p.strip() for p in re.split(r"==|!=", part)]
        pieces = [p for p in pieces if p]
        if len(pieces) != 2:
            continue  # Plausible drops a filter it cannot split in two
        name, value = pieces
        if not known_property(name) and name != "event:hostname":
            if name in UNAVAILABLE_DIMENSIONS:
                raise bad(UNAVAILABLE_DIMENSIONS[name], "filters")
            raise bad(
                f"Invalid filter property '{name[:100]}'. Please provide a valid filter "
                f"property: {DOCS}#properties",
                "filters",
            )
        item = _filter(name, value, negated="!=" in part)
        if item is not None:
            out.append(item)
    return out


def _filter(name: str, value: str, negated: bool) -> list[Any] | None:
    if name == GOAL_DIMENSION:  # always `is`: goals are named, never negated or wildcards
        return ["is", name, [v.replace("\\|", "|") for v in _UNESCAPED_BAR.split(value)]]
    if "*" in value:
        return ["matches_not" if negated else "matches", name, [wildcard(value)]]
    values = [_empty(name, v.replace("\\|", "|")) for v in _UNESCAPED_BAR.split(value)]
    if name == "visit:country" and not all(len(v.encode()) == 2 for v in values):
        return None
    if negated and len(values) == 1:
        return ["is_not", name, values]
    return ["is", name, values]


def _empty(name: str, value: str) -> str:
    """Plausible's names of an empty value as hitstream's label of it for `name`."""
    if value in _EMPTY or (value == _DIRECT and name in ("visit:source", "visit:referrer")):
        return empty_label(name)
    return value


def wildcard(value: str) -> str:
    """A v1 wildcard value as an anchored RE2 pattern: `*` and `**` match any
    characters, `|` separates alternatives (`\\|` is a literal bar). Unlike Plausible's
    `^a|b$`, the anchors hold every alternative: `^(?:a|b)$`."""
    alternatives = []
    for alternative in _UNESCAPED_BAR.split(value):
        literal = _SPECIAL.sub(r"\\\1", alternative.replace("\\|", "|"))
        alternatives.append(re.sub(r"(\\\*)+", ".*", literal))
    return "^(?:" + "|".join(alternatives) + ")$"


def check_goals(filters: list[list[Any]], names: Collection[str]) -> None:
    """A 400 in Plausible's words for a goal filter naming a goal the site does not have
    (`names`: its goals' display names); a page goal is named by its path."""
    for item in filters:
        if item[1] != GOAL_DIMENSION:
            continue
        for goal in item[2]:
            if goal in names:
                continue
            what = (
                f"The pageview goal for the pathname `{goal.removeprefix('Visit ')[:100]}`"
                if goal.startswith("Visit ")
                else f"The goal `{goal[:100]}`"
            )
            raise bad(
                f"{what} is not configured for this site. Find out how to configure goals "
                f"here: {DOCS}#filtering-by-goals",
                "filters",
            )


def properties(filters: list[list[Any]]) -> list[str]:
    """The properties the filters are on, in order."""
    return [item[1] for item in filters]

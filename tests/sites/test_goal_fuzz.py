"""Goals made from arbitrary text through `PUT /api/sites/{id}/goals` and Plausible's
`PUT /api/v1/sites/goals`: never a 5xx, refusals in the error shape, and every goal made
is usable: a v2 query by and filtered on it answers, and counts the one event written
to match it; a v1 goal filter naming it answers too (a 400 at most: a `;` or `==` in
a name breaks v1's filter syntax).

Hypothesis, derandomized (the same cases on every run) and without its example database;
HITSTREAM_FUZZ_EXAMPLES sets how many. Each case gets a site of its own (a goal's
display name and target are unique within a site).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from itertools import count
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from foundation.settings import Settings
from schemas.event import MAX_PROP_VALUE
from sites.goals import MAX_DISPLAY_NAME, MAX_PAGE_PATH
from tests.helpers import (
    ADMIN,
    AUTH,
    D0,
    DAY0,
    at,
    create_site,
    fuzz_settings,
    query_v2,
    rows,
    write,
)

pytestmark = pytest.mark.slow

FUZZ = fuzz_settings(120)
# Text the goal rules care about: wildcards, alternatives, slashes, spaces, Plausible's
# reserved and special names, unicode, long runs; now and then control characters and
# bidirectional overrides (refused), and values of other types.
PIECES = ["/", "*", "**", "|", "\\", " ", ";", "==", "Visit ", "pageview", "pageleave",
          "engagement", "(none)", "%20", "?q=1", "#x", "🦆", "ß", "a" * 130,
          "/" * 2001]  # fmt: skip
# Event goals that no event completes: pageviews complete page goals only, and
# engagement events none (Plausible's rule, docs/http-api.md Goals); making one is
# allowed, as Plausible allows it (only `pageleave` is reserved).
NEVER_COMPLETED = ("pageview", "engagement")
printable = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30)
text = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), printable), max_size=5).map("".join),
    printable,
)
field = st.one_of(
    *[text] * 8,
    st.text(max_size=20),
    st.sampled_from(["\u202e", "\x00", "a\nb"]),
    st.none(),
    st.integers(),
    st.booleans(),
    st.just(["x"]),
)
display_name = st.one_of(st.none(), st.none(), field)
currency = st.one_of(
    st.none(),
    st.none(),
    st.sampled_from(["USD", "eur", " GBP ", "XXX", "US", "", "€"]),
    st.text(max_size=6),
)


@pytest.fixture
def app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(admin_token=ADMIN))


def check_usable(app: TestClient, ch: Client, site: str, goal: dict[str, Any]) -> None:
    """A goal just made: an event that completes it is counted under it, by v2."""
    name = goal["display_name"]
    if goal["goal_type"] == "event":
        write(ch, site, {"v": 1, "ts": at(DAY0, "10:00:00"), "type": goal["event_name"]})
    else:  # a path the goal matches: its wildcards matching nothing
        path = goal["page_path"].replace("*", "")
        write(ch, site, {"v": 1, "ts": at(DAY0, "10:00:00"), "path": path})
    answer = query_v2(
        app,
        site,
        metrics=["visitors", "events"],
        dimensions=["event:goal"],
        filters=[["is", "event:goal", [name]]],
    )
    completes = goal["event_name"] not in NEVER_COMPLETED
    assert rows(answer) == ([([name], [1, 1])] if completes else []), goal
    listed = name.replace("|", "\\|")  # a bar in a v1 list is escaped
    v1 = app.get(
        "/api/v1/stats/aggregate",
        params={"site_id": site, "period": "day", "date": D0, "filters": f"event:goal=={listed}"},
        headers=AUTH,
    )
    assert v1.status_code in (200, 400), (goal, v1.text)


def refused_cleanly(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"], body


def test_goals_from_the_admin_route(app: TestClient, ch: Client) -> None:
    seen: Counter[int] = Counter()
    n = count()

    @FUZZ
    @given(
        target=st.sampled_from([*["event_name", "page_path"] * 4, "both", "neither"]),
        value=field,
        display_name=display_name,
        currency=currency,
    )
    def case(target: str, value: Any, display_name: Any, currency: Any) -> None:
        site = create_site(app, f"g{next(n)}")["site_id"]
        body = {"display_name": display_name, "currency": currency}
        if target == "both":
            body |= {"event_name": value, "page_path": value}
        elif target != "neither":
            body[target] = value
        body = {k: v for k, v in body.items() if v is not None}
        response = app.put(f"/api/sites/{site}/goals", json=body, headers=AUTH)
        seen[response.status_code] += 1
        refused_cleanly(response)
        if response.status_code == 201:
            check_usable(app, ch, site, response.json())

    case()
    assert seen[201] and seen[400], seen


def test_goals_from_plausibles_sites_api(app: TestClient, ch: Client) -> None:
    seen: Counter[int] = Counter()
    n = count()

    @FUZZ
    @given(
        goal_type=st.sampled_from([*["event", "page"] * 4, "pages", ""]),
        value=field,
        display_name=display_name,
        currency=currency,
        form=st.booleans(),
    )
    def case(goal_type: str, value: Any, display_name: Any, currency: Any, form: bool) -> None:
        site = create_site(app, f"v{next(n)}")["site_id"]
        target = "page_path" if goal_type.startswith("page") else "event_name"
        body = {"site_id": site, "goal_type": goal_type, target: value,
                "display_name": display_name, "currency": currency}  # fmt: skip
        body = {k: v for k, v in body.items() if v is not None}
        if form:  # Plausible's clients send forms too: only text there
            data = {k: str(v) for k, v in body.items()}
            response = app.put("/api/v1/sites/goals", data=data, headers=AUTH)
        else:
            response = app.put("/api/v1/sites/goals", json=body, headers=AUTH)
        seen[response.status_code] += 1
        refused_cleanly(response)
        if response.status_code == 200:
            check_usable(app, ch, site, response.json())

    case()
    assert seen[200] and seen[400], seen


@pytest.mark.parametrize(
    "goal",
    [
        {"page_path": "/" + "p" * (MAX_PAGE_PATH - 1)},
        {"event_name": "Signup", "display_name": "s" * MAX_DISPLAY_NAME},
    ],
)
def test_the_longest_display_names_are_usable(
    app: TestClient, ch: Client, goal: dict[str, str]
) -> None:
    """A goal filter takes display names as long as a goal may have (longer than other
    filter values: `Visit ` and a page path of the longest)."""
    site = create_site(app, "long")["site_id"]
    made = app.put(f"/api/sites/{site}/goals", json=goal, headers=AUTH)
    assert made.status_code == 201, made.text
    name = made.json()["display_name"]
    assert len(name) > MAX_PROP_VALUE
    query_v2(app, site, metrics=["visitors"], filters=[["is", "event:goal", [name]]])

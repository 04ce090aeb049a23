"""Stats API v1 `filters` strings built from the grammar's pieces (reporting/
legacy_filters.py) against `GET /api/v1/stats/aggregate` and `/breakdown` of a site with
goals and data: never a 5xx, every refusal in the error shape.

Hypothesis, derandomized (the same cases on every run) and without its example database;
HITSTREAM_FUZZ_EXAMPLES sets how many (more to search, fewer for speed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from foundation.settings import Settings
from reporting.legacy_params import EVENT_PROPERTIES, METRICS
from schemas.query import VISIT_DIMENSIONS
from tests.helpers import ADMIN, AUTH, D0, D1, create_site, fuzz_settings, seed_visits

pytestmark = pytest.mark.slow

FUZZ = fuzz_settings(150)
DOMAIN = "fuzz.example"
GOALS = [
    {"event_name": "Signup"},
    {"page_path": "/pricing"},
    {"page_path": "/docs/**"},
    {"page_path": "/a|b*", "display_name": "Bar | none"},
]
# Every property the API knows, some it refuses by name, and some it does not know.
PROPERTIES = [
    *EVENT_PROPERTIES,
    *VISIT_DIMENSIONS,
    "event:hostname",
    "visit:city",
    "event:props:plan",
    "event:props:x",
    "event:props:",
    "event:props:a;b",
    "event:",
    "visit:",
    "visit:planet",
    "time",
    "",
]
OPERATORS = ["==", "!=", "=", "!", "===", "!==", "==!=", ""]
# Values that mean something to the grammar or to a property.
SPECIAL = [
    "(none)",
    "(not set)",
    "Direct / None",
    "*",
    "**",
    "/docs*",
    "/docs/**",
    "\\|",
    "\\",
    "|",
    "",
    " ",
    ";",
    "==",
    "Signup",
    "Visit /pricing",
    "Visit /nope",
    "Bar \\| none",
    "DE",
    "X (Twitter)",
    "pro",
    "a" * 5000,
    "*" * 300,
    "(?:",
    "[",
    "%",
    "🦆",
    "ß",
]
value_part = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=30))
value = st.lists(value_part, min_size=1, max_size=4).map("|".join)
one_filter = st.one_of(
    st.tuples(
        st.one_of(st.sampled_from(PROPERTIES), st.text(max_size=20)),
        st.sampled_from(OPERATORS),
        value,
    ).map("".join),
    st.text(max_size=40),
)
filters = st.lists(one_filter, min_size=1, max_size=4).map(";".join)
# Mostly metrics every query takes, so that most cases reach the engine.
metrics = st.one_of(
    st.sampled_from(["visitors", "visitors,events,pageviews"]),
    st.lists(st.sampled_from([*METRICS, "time_on_page", ""]), min_size=1, max_size=3).map(",".join),
)


@pytest.fixture
def app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings], ch: Client
) -> TestClient:
    """A site with goals and seed_visits's data, read with the admin token."""
    made = make_client(make_settings(ingest_auth="key", admin_token=ADMIN))
    site = create_site(made, "fuzz", domains=[DOMAIN])["site_id"]
    for goal in GOALS:
        response = made.put(f"/api/sites/{site}/goals", json=goal, headers=AUTH)
        assert response.status_code == 201, response.text
    seed_visits(ch, site)
    return made


def call(app: TestClient, endpoint: str, params: dict[str, str], seen: Counter[int]) -> Any:
    """GET a v1 endpoint: no 5xx; a refusal is `{"error": str, "details": [...]}`."""
    response = app.get(
        f"/api/v1/stats/{endpoint}",
        params={"site_id": DOMAIN, "period": "custom", "date": f"{D0},{D1}", **params},
        headers=AUTH,
    )
    seen[response.status_code] += 1
    assert response.status_code < 500, (params, response.text)
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body.get("error"), str) and body["error"], (params, body)
        assert isinstance(body.get("details"), list), (params, body)
    return body


def test_aggregate_filters(app: TestClient) -> None:
    seen: Counter[int] = Counter()

    @FUZZ
    @given(filters=filters, metrics=metrics, compare=st.booleans())
    def case(filters: str, metrics: str, compare: bool) -> None:
        params = {"filters": filters, "metrics": metrics}
        if compare:
            params["compare"] = "previous_period"
        call(app, "aggregate", params, seen)

    case()
    assert seen[200] and seen[400], seen  # both answers were reached


def test_breakdown_filters(app: TestClient) -> None:
    seen: Counter[int] = Counter()

    @FUZZ
    @given(
        filters=filters,
        prop=st.sampled_from(PROPERTIES),
        metrics=metrics,
        limit=st.sampled_from(["1", "3", "1000"]),
    )
    def case(filters: str, prop: str, metrics: str, limit: str) -> None:
        params = {"filters": filters, "property": prop, "metrics": metrics, "limit": limit}
        call(app, "breakdown", params, seen)

    case()
    assert seen[200] and seen[400], seen


CORNERS = [
    "event:goal==Signup|Visit /pricing|Bar \\| none",
    "event:goal!=Signup",
    "event:goal==Visit /docs/**",
    "event:page==/docs/**|(none);visit:source!=Direct / None",
    "event:props:plan==(none)|pro",
    "visit:country==DE|(none)",
    "event:page==" + "*" * 300,
    "visit:source==" + "x|" * 2000,
]


def test_grammar_corners(app: TestClient) -> None:
    """The corners the generated cases may miss, on both endpoints."""
    seen: Counter[int] = Counter()
    for text in CORNERS:
        call(app, "aggregate", {"filters": text}, seen)
        for prop in ("event:goal", "event:page", "visit:source"):
            call(app, "breakdown", {"filters": text, "property": prop}, seen)
    assert seen[200], seen

"""What one stats query may ask of the engine: bounded filters and patterns, engine
limits of time and memory, each a 400 naming the part or the limit (never a 5xx)."""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from reporting.filters import MAX_FILTER_BYTES, MAX_PATTERN_PROGRAM, MAX_PATTERNS

ROWS = 30_000
# Events today on one site, each its own path of about 1 KB.
SEED = (
    "INSERT INTO events (event_id, site_id, event_type, path, ts, received_at, visitor_id)"
    " SELECT generateUUIDv4(number), 'big', 'pageview',"
    " concat('/', repeat('p', 1000), '/', toString(number)), now64(3), now64(3), number + 1"
    f" FROM numbers({ROWS})"
)
# The probe's pattern: 15 alternatives of a counted repetition, repeated up to 8 times.
COSTLY_PATTERN = "(?:" + "|".join(f"[a-z0-9]{{1,50}}TAG{i:03d}" for i in range(15)) + "){1,8}$"


def query(client: TestClient, filters: list[Any], **extra: Any) -> Any:
    body = {"site_id": "big", "date_range": "day", "metrics": ["visitors"], "filters": filters}
    return client.post("/api/v2/query", json={**body, **extra})


def field_of(response: Any) -> str:
    assert response.status_code == 400, response.text
    return str(response.json()["details"][0]["field"])


@pytest.fixture
def seeded(schema: Client, client: TestClient) -> TestClient:
    schema.command(SEED)
    return client


def test_many_long_needles_take_little_memory(seeded: TestClient) -> None:
    """The probe's filter shape just under the budget (30 needles of 2,000 characters),
    over 30,000 rows: a lambda over the needles copied them for every row (gigabytes);
    one pass for all needles keeps the process's peak where it was."""
    needles = ["x" * 1990 + f"{i:02d}" for i in range(29)] + ["p" * 1000 + "/7"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    response = query(seeded, [["contains", "event:page", needles]])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    assert response.status_code == 200, response.text
    # The paths of 7, 70-79, 700-799 and 7000-7999 end in "p/7...".
    assert response.json()["results"][0]["metrics"] == [1 + 10 + 100 + 1000]
    assert peak - before < 500, f"peak RSS grew {peak - before} MB"


def test_filters_past_the_values_budget_are_a_400_naming_filters(seeded: TestClient) -> None:
    """The probe's body (60 needles of 2,000 characters, 120 KB), and one at the body cap."""
    probe = query(seeded, [["contains", "event:page", ["x" * 2000] * 60]])
    assert field_of(probe) == "filters"
    assert f"at most {MAX_FILTER_BYTES}" in probe.json()["details"][0]["message"]
    nested = [["or", [["contains", "event:page", ["y" * 2000] * 100] for _ in range(5)]]]
    at_the_cap = query(seeded, nested)  # about 1 MB of JSON
    assert len(at_the_cap.request.content) > 1_000_000
    assert at_the_cap.status_code in (400, 413) and at_the_cap.status_code != 500


def test_a_costly_regex_is_a_400_naming_its_clause(seeded: TestClient) -> None:
    response = query(seeded, [["matches", "event:page", ["^/p", COSTLY_PATTERN]]])
    assert field_of(response) == "filters[0][2][1]"
    assert f"at most {MAX_PATTERN_PROGRAM}" in response.json()["details"][0]["message"]


def test_nine_filters_of_a_thousand_patterns_are_a_400_not_a_503(seeded: TestClient) -> None:
    filters = [["matches", "event:page", [f"^/a{i}-{j}" for j in range(1000)]] for i in range(9)]
    response = query(seeded, filters)
    assert field_of(response) == "filters"
    assert f"at most {MAX_PATTERNS}" in response.json()["details"][0]["message"]


def test_a_case_insensitive_pattern_is_measured_as_the_engine_runs_it(
    seeded: TestClient,
) -> None:
    """`(?i)` multiplies a pattern's program: the size checked is the one run."""
    pattern = "k" * 600
    assert query(seeded, [["matches", "event:page", [pattern]]]).status_code == 200
    insensitive = [["matches", "event:page", [pattern], {"case_sensitive": False}]]
    assert field_of(query(seeded, insensitive)) == "filters[0][2][0]"


def test_contains_an_empty_string_matches_every_value(seeded: TestClient) -> None:
    every = query(seeded, [])
    assert every.status_code == 200
    with_empty = query(seeded, [["contains", "event:page", ["", "zzz"]]])
    assert with_empty.json()["results"] == every.json()["results"] != []
    none = query(seeded, [["contains_not", "event:page", [""]]])
    assert none.json()["results"][0]["metrics"] == [0]


def test_a_comparison_on_the_first_days_answers_and_before_them_is_a_400(
    seeded: TestClient,
) -> None:
    first = seeded.post(
        "/api/v2/query",
        json={"site_id": "big", "date_range": ["1970-01-03", "1970-01-03"],
              "metrics": ["visitors"], "include": {"compare": "previous_period"}},
    )  # fmt: skip
    assert first.status_code == 200, first.text
    before = seeded.post(
        "/api/v2/query",
        json={"site_id": "big", "date_range": ["1970-01-02", "1970-01-02"],
              "metrics": ["visitors"], "include": {"compare": "previous_period"}},
    )  # fmt: skip
    assert field_of(before) == "include.compare"


def test_a_comparison_before_1970_is_a_400(seeded: TestClient) -> None:
    response = seeded.post(
        "/api/v2/query",
        json={
            "site_id": "big",
            "date_range": ["1970-01-02", "2099-12-31"],
            "metrics": ["visitors"],
            "dimensions": ["time:month"],
            "include": {"compare": "year_over_year"},
        },
    )
    assert field_of(response) == "include.compare"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('"filters": [["matches", "event:page", ["\\ud800"]]]', "filters[0][2][0]"),
        ('"filters": [["is", "event:page", ["/a\\udfff"]]]', "filters[0][2][0]"),
        ('"filters": [["is", "event:props:\\ud800", ["x"]]]', "filters[0][1]"),
        ('"dimensions": ["event:props:a\\ud800"]', "dimensions[0]"),
    ],
)
def test_lone_surrogates_in_filters_and_dimensions_are_400s(
    seeded: TestClient, body: str, field: str
) -> None:
    """As ingest refuses them in event fields (they were a 500 or a 503 here)."""
    raw = '{"site_id": "big", "date_range": "day", "metrics": ["visitors"], ' + body + "}"
    response = seeded.post(
        "/api/v2/query", content=raw, headers={"content-type": "application/json"}
    )
    assert field_of(response) == field


def test_a_query_past_its_time_limit_is_a_400_naming_it(
    schema: Client, make_settings: Callable[..., Settings], make_client: Callable[..., TestClient]
) -> None:
    schema.command(SEED)
    settings = make_settings(clickhouse_database=schema.database, query_timeout_s=0.001)
    client = make_client(settings)
    body = {"site_id": "big", "date_range": "day", "metrics": ["visitors", "pageviews"],
            "dimensions": ["event:page"]}  # fmt: skip
    response = client.post("/api/v2/query", json=body)
    assert field_of(response) == "query"
    assert "time limit" in response.json()["details"][0]["message"]
    assert "HITSTREAM_QUERY_TIMEOUT_S" in response.json()["details"][0]["message"]
    readers = client.app_state["stats_readers"]
    assert readers.idle == readers.size, "the reader of the stopped query is free again"


def test_a_query_past_its_memory_limit_is_a_400_naming_it(
    schema: Client, make_settings: Callable[..., Settings], make_client: Callable[..., TestClient]
) -> None:
    schema.command(SEED)
    settings = make_settings(clickhouse_database=schema.database, query_max_memory=16 << 20)
    client = make_client(settings)
    body = {"site_id": "big", "date_range": "day", "metrics": ["visitors"],
            "dimensions": ["event:page"], "pagination": {"limit": 10}}  # fmt: skip
    response = client.post("/api/v2/query", json=body)
    assert field_of(response) == "query"
    assert "memory limit" in response.json()["details"][0]["message"]
    # A CSV answer too: its first chunk is pulled before the answer begins, so the
    # limit is a 400, not a 200 cut short.
    csv = client.post("/api/v2/query", json=body, headers={"accept": "text/csv"})
    assert field_of(csv) == "query"
    readers = client.app_state["stream_readers"]
    assert readers.idle == readers.size

"""POST /event and /events through the real app: answers, errors, and what reaches the stream."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import orjson
import pytest
import redis
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from schemas.entry import ROW_FIELD
from tests.helpers import D0, D1, event, free_port


def stream_rows(redis_conn: redis.Redis, settings: Settings) -> list[dict[str, object]]:
    entries = redis_conn.xrange(settings.keys.shard(0).stream)
    return [orjson.loads(fields[ROW_FIELD]) for _, fields in entries]


@pytest.fixture
def ingest_client(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, frozenset({Role.INGEST}))


@pytest.mark.parametrize("route", ["/event", "/api/event"])
def test_event_is_accepted_and_stored_normalised(
    ingest_client: TestClient, redis_conn: redis.Redis, settings: Settings, route: str
) -> None:
    response = ingest_client.post(
        route,
        json=event(
            "s1",
            "https://example.com/pricing?x=1",
            user_id="u1",
            timestamp=f"{D0}T23:30:00-02:00",
        ),
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    [row] = stream_rows(redis_conn, settings)
    assert row["event_id"] == body["event_id"]
    assert row["path"] == "/pricing"
    assert row["ts"] == f"{D1} 01:30:00.000"
    assert (row["site_id"], row["user_id"]) == ("s1", "u1")


def test_client_event_id_is_echoed(ingest_client: TestClient) -> None:
    eid = str(uuid.uuid4())
    response = ingest_client.post("/event", json=event("s1", event_id=eid))
    assert response.json()["event_id"] == eid


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[]",
        b'"a string"',
        b'{"site_id": 1, "event_type": "x", "path": "/"}',
        b'{"event_type": "x", "path": "/"}',
        b'{"site_id": "s", "event_type": "x", "path": "/", "timestamp": "2025-13-40T00:00:00Z"}',
        b'{"site_id": "s", "event_type": "x", "path": "/", "timestamp": 1731582600}',
        b'\xff\xfe{"site_id": "s"}',
    ],
)
def test_bad_event_is_400_with_details_and_nothing_enqueued(
    ingest_client: TestClient, redis_conn: redis.Redis, settings: Settings, body: bytes
) -> None:
    response = ingest_client.post(
        "/event", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"]
    assert payload["details"] and all({"field", "message"} <= set(d) for d in payload["details"])
    assert not redis_conn.exists(settings.keys.shard(0).stream)


def test_batch_is_accepted_in_order(
    ingest_client: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    events = [event("s1", f"/p{i}") for i in range(20)]
    response = ingest_client.post("/events", json=events)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted" and body["accepted"] == 20
    rows = stream_rows(redis_conn, settings)
    assert [row["event_id"] for row in rows] == body["event_ids"]
    assert [row["path"] for row in rows] == [f"/p{i}" for i in range(20)]


def test_batch_with_one_bad_item_is_rejected_whole(
    ingest_client: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    events = [event("s1"), event("s1"), {"site_id": "s1", "event_type": "x", "path": 3}]
    response = ingest_client.post("/events", json=events)
    assert response.status_code == 400
    payload = response.json()
    assert "event 2" in payload["error"]
    assert payload["details"] == [
        {"field": "path", "message": "Input should be a valid string", "index": 2}
    ]
    assert not redis_conn.exists(settings.keys.shard(0).stream)


@pytest.mark.parametrize("size", [0, 501])
def test_batch_size_bounds(
    ingest_client: TestClient, redis_conn: redis.Redis, settings: Settings, size: int
) -> None:
    response = ingest_client.post("/events", json=[event("s1")] * size)
    assert response.status_code == 400
    assert response.json()["error"]
    assert not redis_conn.exists(settings.keys.shard(0).stream)


def test_batch_must_be_an_array(ingest_client: TestClient) -> None:
    response = ingest_client.post("/events", json=event("s1"))
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "body"


def test_wrong_method_is_a_json_405(ingest_client: TestClient) -> None:
    response = ingest_client.get("/event")
    assert response.status_code == 405
    assert response.json()["error"]


def test_unknown_route_is_a_json_404(ingest_client: TestClient) -> None:
    response = ingest_client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"]


def test_redis_down_is_503_with_retry_after(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    closed = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}")
    client = make_client(closed, frozenset({Role.INGEST}))
    response = client.post("/event", json=event("s1"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "unavailable" in response.json()["error"]
    # The engine's own words (addresses, errors) are logged, not told to the client.
    assert "127.0.0.1" not in response.text and "Error" not in response.text
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["engines"]["redis"] == "unavailable"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"site_id": "s1"}, 400),  # invalid event
        ([], 400),  # empty batch
        ("x" * 2_000_000, 413),
    ],
)
def test_refusals_to_a_browser_carry_cors_headers_in_open_mode(
    ingest_client: TestClient, body: object, status: int
) -> None:
    route = "/events" if isinstance(body, list) else "/event"
    headers = {"origin": "https://blog.example", "content-type": "text/plain"}
    content = body if isinstance(body, str) else orjson.dumps(body)
    response = ingest_client.post(route, content=content, headers=headers)
    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_rate_limited_browser_can_read_its_429(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(rate_limit_ip_per_s=0.01, rate_limit_ip_burst=1)
    client = make_client(settings, frozenset({Role.INGEST}))
    headers = {"origin": "https://blog.example"}
    assert client.post("/event", json=event("s1"), headers=headers).status_code == 202
    limited = client.post("/event", json=event("s1"), headers=headers)
    assert limited.status_code == 429
    assert limited.headers["access-control-allow-origin"] == "*"
    assert "retry-after" in limited.headers

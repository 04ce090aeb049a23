"""Hostile input through the real app: each a clean 4xx with the error shape, nothing enqueued."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from foundation.settings import Settings
from foundation.testing import HitstreamProcess, free_port
from hitstream.app import Role
from tests.helpers import event

EVENT = json.dumps(event("s1")).encode()
BASE = b'{"site_id": "s", "event_type": "x", "path": "/", '


@pytest.fixture
def ingest(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(max_body_bytes=4096), frozenset({Role.INGEST}))


def assert_error(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "details"} and body["error"]
    assert all({"field", "message"} <= set(d) for d in body["details"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"site_id": "s", "site_id": "t", "event_type": "x", "path": "/"}', "duplicated key"),
        (b'{"site_id": "s", "event_type": "x", "path": "/", "n": 1e99999}', "out of range"),
        (b'{"site_id": "s", "event_type": "x", "path": "/", "n": NaN}', "NaN"),
        (b'{"site_id": "s\xff", "event_type": "x", "path": "/"}', "UTF-8"),
        (b'{"site_id": "s\\u0000", "event_type": "x", "path": "/"}', "site_id"),
        (b'{"site_id": "s", "event_type": "x", "path": "/\\u0000"}', "control characters"),
        (b'{"site_id": "s", "event_type": "x", "path": "/", "user_id": "\\ud800"}', "user_id"),
        (b'{"site_id": 12345678901234567890, "event_type": "x", "path": "/"}', "valid string"),
        (b'{"site_id": "s", "event_type": true, "path": "/"}', "valid string"),
        (
            b'{"site_id": "s", "event_type": "x", "path": "/", "m": '
            + b"[" * 40
            + b"]" * 40
            + b"}",
            "nesting",
        ),
        (
            BASE + b'"timestamp": "2099-01-01T00:00:00Z"}',
            "future",
        ),
        (
            BASE + b'"timestamp": "1999-01-01T00:00:00Z"}',
            "retention",
        ),
        (b'{"site_id": "no spaces", "event_type": "x", "path": "/"}', "pattern"),
    ],
)
def test_bad_json_is_400_with_the_reason(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings, body: bytes, message: str
) -> None:
    response = ingest.post("/event", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400)
    assert message in json.dumps(response.json())
    assert not redis_conn.exists(settings.keys.shard(0).stream)


def test_body_over_the_cap_is_413(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    padded = json.dumps({**event("s1"), "pad": "x" * 5000}).encode()
    response = ingest.post("/event", content=padded, headers={"content-type": "application/json"})
    assert_error(response, 413)
    assert not redis_conn.exists(settings.keys.shard(0).stream)


def test_chunked_body_over_the_cap_is_413_while_reading(ingest: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"site_id": "s1", "event_type": "x", "path": "/", "pad": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = ingest.post("/event", content=chunks(), headers={"content-type": "application/json"})
    assert_error(response, 413)


@pytest.mark.parametrize(
    "media_type", ["application/x-www-form-urlencoded", "text/html", "multipart/form-data"]
)
def test_other_media_types_are_415(ingest: TestClient, media_type: str) -> None:
    assert_error(ingest.post("/event", content=EVENT, headers={"content-type": media_type}), 415)


def test_text_plain_beacons_and_charset_parameters_are_accepted(ingest: TestClient) -> None:
    for media_type in ("text/plain", "text/plain;charset=UTF-8", "application/json; charset=utf-8"):
        response = ingest.post("/event", content=EVENT, headers={"content-type": media_type})
        assert response.status_code == 202, (media_type, response.text)


@pytest.mark.e2e
def test_declared_length_over_the_cap_is_refused_without_reading_the_body(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A real server: the client declares 10 MB, sends nothing, and still gets its 413."""
    settings = make_settings()
    env = {
        "HITSTREAM_REDIS_URL": settings.redis_url or "",
        "HITSTREAM_REDIS_PREFIX": settings.redis_prefix,
        "HITSTREAM_PORT": str(free_port()),
    }
    server = HitstreamProcess("ingest", env, tmp_path / "ingest.log").start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /event HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10000000\r\n\r\n"
            )
            reply = b""
            while b"\r\n\r\n" not in reply or not reply.endswith(b"}"):
                chunk = sock.recv(4096)  # the body may come in a segment of its own
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413"), reply
        assert b'"error"' in reply
    finally:
        server.stop()


def test_batch_shapes(ingest: TestClient) -> None:
    """Sizes are in test_routes.py; here, bodies that are not arrays of events."""
    assert_error(ingest.post("/events", json={"not": "a list"}), 400)
    assert_error(ingest.post("/events", json=[1, 2, 3]), 400)
    assert_error(ingest.post("/events", json=[]), 400)

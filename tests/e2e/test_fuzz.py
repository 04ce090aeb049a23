"""Schemathesis against a real `hitstream serve`: no 5xx, every 4xx in the error shape,
and no rejected request adds anything to the stream.

Every operation of /openapi.json is called with generated valid and invalid data
(`FUZZ_EXAMPLES` per operation and mode); answers are also checked against the
documented status codes, media types and response schemas.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import redis
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from foundation.settings import Settings
from foundation.testing import HitstreamProcess
from hitstream import openapi
from hitstream.app import create_app
from schemas.entry import ROW_FIELD
from tests.helpers import DEFAULT_KEYS

pytestmark = pytest.mark.e2e

ADMIN = "fuzz-admin-token-5a7c3e91"
STREAM = DEFAULT_KEYS.shard(0).stream
FUZZ_EXAMPLES = int(os.environ.get("HITSTREAM_FUZZ_EXAMPLES", "60"))
# plausible_ok: entries added by events in Plausible's shape, answered `ok` (with no
# event ID): each such answer must add exactly one entry, a dropped one none.
CASES: dict[str, int] = {"total": 0, "rejected": 0, "plausible_ok": 0}
ACCEPTED: set[str] = set()  # event IDs answered 2xx (a repeated client event_id counts once)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Live:
    base_url: str
    redis: redis.Redis


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("fuzz")
    env = {
        "HITSTREAM_DATA_DIR": str(data / "data"),
        "HITSTREAM_ADMIN_TOKEN": ADMIN,
        "HITSTREAM_RATE_LIMIT_IP_PER_S": "0",  # one client sends everything,
        "HITSTREAM_RATE_LIMIT_AUTH_FAILURES_PER_S": "0",  # many of them with made-up keys
    }
    server = HitstreamProcess("serve", env, data / "serve.log").start()
    conn = redis.Redis.from_url((data / "data" / "valkey.url").read_text().strip())
    yield Live(server.base_url, conn)
    conn.close()
    assert server.stop() == 0, server.log()
    print(
        f"\nfuzz: {CASES['total']} cases, {CASES['rejected']} rejected with 4xx,"
        f" {CASES['plausible_ok']} accepted in Plausible's shape"
    )


# The same document `serve` publishes at /openapi.json, built without starting anything.
schema = schemathesis.openapi.from_dict(
    openapi.document_for(
        create_app(Settings(redis_url="redis://unused")).routes, site_id_required=True
    )
)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=FUZZ_EXAMPLES
)


@schema.parametrize()
def test_no_5xx_and_clean_rejections(case: Any, live: Live) -> None:
    before = live.redis.xlen(STREAM)
    response = case.call(base_url=live.base_url, headers={"Authorization": f"Bearer {ADMIN}"})
    CASES["total"] += 1
    assert response.status_code < 500, response.text
    content_type = (response.headers.get("content-type") or [""])[0]  # header: its values
    if response.status_code == 202 and content_type.startswith("text/"):
        assert response.text == "ok"  # Plausible's shape, answered as Plausible does
        added = live.redis.xlen(STREAM) - before
        assert added == (0 if "x-plausible-dropped" in response.headers else 1)
        CASES["plausible_ok"] += added
    elif response.status_code == 202:
        answer = response.json()
        if answer["status"] == "accepted":
            ACCEPTED.update(answer.get("event_ids") or [answer["event_id"]])
    if response.status_code >= 400:
        CASES["rejected"] += 1
        body = response.json()
        assert live.redis.xlen(STREAM) == before, "a rejected request added to the stream"
        if case.path == "/api/send" and response.status_code == 400:  # Umami's shape
            assert {"message", "code", "status"} <= set(body["error"]), body
            assert body["error"]["status"] == response.status_code, body
            case.validate_response(response, checks=CHECKS)
            return
        # hitstream's error shape; Plausible-shaped events also get Plausible's `errors`
        assert {"error", "details"} <= set(body) <= {"error", "details", "errors"}, body
        assert isinstance(body["error"], str), body
        assert all({"field", "message"} <= set(item) for item in body["details"]), body
        assert live.redis.xlen(STREAM) == before, "a rejected request added to the stream"
    case.validate_response(response, checks=CHECKS)


def test_fuzz_ran_and_the_stream_holds_exactly_the_accepted_events(live: Live) -> None:
    """Runs after the generated cases (file order); the counts are printed at the end."""
    assert CASES["total"] >= 100
    rows = [orjson.loads(fields[ROW_FIELD]) for _, fields in live.redis.xrange(STREAM)]
    ids = {row["event_id"] for row in rows}
    assert ids >= ACCEPTED and len(ids - ACCEPTED) == CASES["plausible_ok"]
    # Event IDs are per site: the same ID sent for two sites is two events.
    pairs = {(row["site_id"], row["event_id"]) for row in rows}
    assert len(rows) == len(pairs), "each accepted event is in the stream once"

"""A batch over several stream shards: each shard's part is stored atomically; when one
shard refuses and another took its part, the 503 names what was stored, and a retry of
the whole request counts every event with an event_id once."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import redis
from starlette.testclient import TestClient

from foundation.keys import shard_of
from foundation.settings import Settings
from hitstream.app import Role
from tests.helpers import event

SHARDS = 4


def _sites_on_two_shards() -> tuple[str, str]:
    first = "batch-a"
    other = next(
        f"batch-{n}"
        for n in range(100)
        if shard_of(f"batch-{n}", SHARDS) != shard_of(first, SHARDS)
    )
    return first, other


def test_a_shard_that_refuses_gets_a_503_naming_what_was_stored_and_a_retry_counts_once(
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    redis_conn: redis.Redis,
) -> None:
    settings = make_settings(stream_shards=SHARDS)
    ingest = make_client(settings, frozenset({Role.INGEST}))
    a, b = _sites_on_two_shards()
    stream_a, stream_b = settings.keys.shard_for(a).stream, settings.keys.shard_for(b).stream
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = [
        event(a, "/1", event_id=ids[0]),
        event(b, "/2", event_id=ids[1]),
        event(a, "/3", event_id=ids[2]),
    ]
    redis_conn.set(stream_b, b"not a stream")  # the fault: shard b refuses every append

    refused = ingest.post("/events", json=batch)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    body = refused.json()
    assert body["error"] == "event stream partly unavailable, retry later"
    assert body["accepted"] == 2 and body["stored"] == [0, 2]
    assert body["event_ids"] == [ids[0], ids[2]]
    assert "not a stream" not in refused.text and "WRONGTYPE" not in refused.text
    assert redis_conn.xlen(stream_a) == 2

    redis_conn.delete(stream_b)
    retried = ingest.post("/events", json=batch)
    assert retried.status_code == 202, retried.text
    assert redis_conn.xlen(stream_a) == 2, "a's events were recognised, not stored again"
    assert redis_conn.xlen(stream_b) == 1


def test_a_batch_of_one_sites_events_stays_all_or_nothing(
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    redis_conn: redis.Redis,
) -> None:
    settings = make_settings(stream_shards=SHARDS)
    ingest = make_client(settings, frozenset({Role.INGEST}))
    a, _ = _sites_on_two_shards()
    stream = settings.keys.shard_for(a).stream
    redis_conn.set(stream, b"not a stream")
    refused = ingest.post("/events", json=[event(a, "/1"), event(a, "/2")])
    assert refused.status_code == 503 and "stored" not in refused.json()
    redis_conn.delete(stream)
    assert ingest.post("/events", json=[event(a, "/1"), event(a, "/2")]).status_code == 202
    assert redis_conn.xlen(stream) == 2

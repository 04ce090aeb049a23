"""Counted once: redelivered batches, client retries, poison entries, trimming, backpressure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from consumers.processor import BatchProcessor
from consumers.recovery import trim_acknowledged
from consumers.sink import ClickHouseSink
from consumers.worker import ensure_group
from foundation.settings import Settings
from hitstream.app import Role
from hitstream.connections import redis_client
from schemas import entry
from schemas.entry import ROW_FIELD
from tests.helpers import D0, event, poll_stats, post_batches, stream_entry, wait_drained, wait_for

Stats = Callable[..., dict[str, Any]]


def raw_count(ch: Client, site: str) -> tuple[int, int]:
    """Rows and distinct event_ids of a site in the raw table."""
    rows, distinct = ch.query(
        "SELECT count(), uniqExact(event_id) FROM events WHERE site_id = {s:String}",
        parameters={"s": site},
    ).result_rows[0]
    return int(rows), int(distinct)


def pending(conn: redis.Redis, settings: Settings) -> int:
    return int(conn.xpending(settings.keys.shard(0).stream, settings.group)["pending"])


def drained(conn: redis.Redis, settings: Settings) -> None:
    wait_drained(conn, settings.keys.shard(0).stream, settings.group)


@pytest.mark.anyio
async def test_same_batch_redelivered_on_purpose_counts_once(
    schema: Client, settings: Settings, redis_conn: redis.Redis
) -> None:
    """Process one batch, then hand the same entries in again, both ways they can come back."""
    ingest = [stream_entry(event("again", f"/{i}")) for i in range(30)]
    for fields in ingest:
        redis_conn.xadd(settings.keys.shard(0).stream, fields)
    redis = redis_client(settings.redis_url or "")
    try:
        await ensure_group(redis, settings.keys.shard(0).stream, settings.group)
        reply: Any = await redis.xreadgroup(
            settings.group, "c1", {settings.keys.shard(0).stream: ">"}
        )
        ids = [entry_id for entry_id, _ in reply[0][1]]
        entries = [fields for _, fields in reply[0][1]]
        shard = settings.keys.shard(0)
        processor = BatchProcessor(settings, shard, "c1", redis, ClickHouseSink(schema))
        await processor.process(ids, entries)
        await processor.process(ids, entries)  # same composition: the insert token dedups
        await processor.process(ids, entries, redelivered=True)  # stored-ID check skips all
        await processor.process(ids[:7] + ids[20:], entries[:7] + entries[20:], redelivered=True)
    finally:
        await redis.aclose()
    assert raw_count(schema, "again") == (30, 30)
    totals = schema.query("SELECT sum(views) FROM daily_totals WHERE site_id = 'again'")
    paths = schema.query("SELECT sum(views) FROM daily_pages WHERE site_id = 'again'")
    assert totals.result_rows[0][0] == paths.result_rows[0][0] == 30


def test_client_retrying_one_event_id_ten_times_counts_once(
    client: TestClient, ch: Client, stats: Stats, settings: Settings, redis_conn: redis.Redis
) -> None:
    body = event("retry", "/buy", user_id="u1", event_id=str(uuid.uuid4()))
    answers = [client.post("/event", json=body) for _ in range(7)]
    answers += [client.post("/events", json=[body, body]) for _ in range(3)]
    assert all(a.status_code == 202 for a in answers)
    assert {a.json().get("event_id") for a in answers[:7]} == {body["event_id"]}
    client.post("/event", json=event("retry", "/other"))  # a different event still counts
    stats(lambda b: b["total_views"] == 2, site_id="retry")
    drained(redis_conn, settings)
    assert raw_count(ch, "retry") == (2, 2)
    final = client.get("/stats", params={"site_id": "retry"}).json()
    assert final["total_views"] == 2 and final["unique_users"] == 1


def test_client_retry_after_the_dedup_window_still_counts_once(
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    ch: Client,
    redis_conn: redis.Redis,
) -> None:
    settings = make_settings(dedup_window_s=1)
    client = make_client(settings)
    body = event("late-retry", "/", event_id=str(uuid.uuid4()))
    assert client.post("/event", json=body).status_code == 202
    remembered = settings.keys.shard(0).dedup + "late-retry:*"
    wait_for(
        lambda: True if not redis_conn.keys(remembered) else None,
        timeout=10,
        what="the remembered event ID to expire",
    )
    assert client.post("/event", json=body).status_code == 202
    wait_for(
        lambda: (
            True
            if redis_conn.xinfo_groups(settings.keys.shard(0).stream)[0]["entries-read"] == 2
            else None
        ),
        what="both copies to be read",
    )
    drained(redis_conn, settings)
    assert raw_count(ch, "late-retry") == (1, 1)
    totals = ch.query("SELECT sum(views) FROM daily_totals WHERE site_id = 'late-retry'")
    assert totals.result_rows[0][0] == 1


@pytest.mark.e2e
def test_poison_entries_are_dead_lettered_and_good_ones_count(
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    redis_conn: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(max_deliveries=3, insert_backoff_initial_s=0.01)
    client = make_client(settings)
    good = [event("poison", f"/{i}", timestamp=f"{D0}T04:04:04Z") for i in range(20)]
    bad_uuid = b'{"event_id":"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz","site_id":"poison"}'
    client.post("/events", json=good[:10])
    redis_conn.xadd(settings.keys.shard(0).stream, entry.fields(bad_uuid))
    redis_conn.xadd(settings.keys.shard(0).stream, {b"something": b"else"})
    client.post("/events", json=good[10:])
    dead = wait_for(
        lambda: (
            redis_conn.xrange(settings.keys.shard(0).dead_letters) or None
            if redis_conn.xlen(settings.keys.shard(0).dead_letters) == 2
            else None
        ),
        what="two dead letters",
    )
    # The good events of the poisoned batch are inserted as its halves are retried:
    # some may land after the dead letters.
    poll_stats(client, lambda b: b["total_views"] == 20, site_id="poison", date=D0)
    drained(redis_conn, settings)
    body = client.get("/stats", params={"site_id": "poison", "date": D0}).json()
    assert body["total_views"] == 20, "each good event once"
    by_source = {fields[b"error"]: fields for _, fields in dead}
    rejected = next(f for e, f in by_source.items() if b"UUID" in e)
    assert rejected[ROW_FIELD] == bad_uuid and b"after 3 attempts" in rejected[b"error"]
    assert int(rejected[b"deliveries"]) >= 1
    foreign = next(f for e, f in by_source.items() if b"not a hitstream event" in e)
    assert foreign[b"something"] == b"else"
    logged = [r.getMessage() for r in caplog.records if "dead-lettered entry" in r.getMessage()]
    assert len(logged) == 2, "one log line per dead-lettered entry"

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HITSTREAM_")},
        "HITSTREAM_REDIS_URL": settings.redis_url or "",
        "HITSTREAM_REDIS_PREFIX": settings.redis_prefix,
        "HITSTREAM_GROUP": settings.group,
    }
    cli = [sys.executable, "-m", "hitstream.cli", "dlq"]
    listed = subprocess.run([*cli, "list"], env=env, capture_output=True, check=True, text=True)
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(lines) == 2 and all(
        {"id", "error", "deliveries", "source_id"} <= set(x) for x in lines
    )
    replayed = subprocess.run([*cli, "replay"], env=env, capture_output=True, check=True, text=True)
    assert "replayed 2" in replayed.stdout
    # Still poison: they come back to the dead letters; the good events are not doubled.
    wait_for(
        lambda: (
            True
            if redis_conn.xlen(settings.keys.shard(0).dead_letters) == 2
            and pending(redis_conn, settings) == 0
            else None
        ),
        what="replayed poison to be dead-lettered again",
    )
    assert (
        client.get("/stats", params={"site_id": "poison", "date": D0}).json()["total_views"] == 20
    )


@pytest.mark.anyio
async def test_backlog_over_trim_threshold_keeps_every_pending_entry(
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    ch: Client,
    redis_conn: redis.Redis,
) -> None:
    settings = make_settings(
        trim_threshold=10, maintenance_interval_s=0.05, insert_backoff_max_s=0.2
    )
    client = make_client(settings)
    ch.command("DETACH TABLE events")
    try:
        post_batches(client, [event("trim", timestamp=f"{D0}T00:00:00Z")] * 25, times=4)
        # The consumer holds its first batch (retrying); the rest waits unread behind it.
        wait_for(
            lambda: True if pending(redis_conn, settings) > 0 else None, what="a pending batch"
        )
        redis = redis_client(settings.redis_url or "")
        try:
            assert (
                await trim_acknowledged(
                    redis, settings.keys.shard(0).stream, settings.trim_threshold
                )
                == 0
            )
        finally:
            await redis.aclose()
        assert redis_conn.xlen(settings.keys.shard(0).stream) == 100
    finally:
        ch.command("ATTACH TABLE events")
    poll_stats(client, lambda b: b["total_views"] == 100, site_id="trim", date=D0)
    # Once acknowledged, the entries over the threshold are trimmed away.
    wait_for(
        lambda: True if redis_conn.xlen(settings.keys.shard(0).stream) <= 10 else None, what="trim"
    )


@pytest.mark.anyio
async def test_trim_waits_for_every_group(settings: Settings, redis_conn: redis.Redis) -> None:
    for i in range(30):
        redis_conn.xadd(settings.keys.shard(0).stream, entry.fields(b"x" + str(i).encode()))
    redis_conn.xgroup_create(settings.keys.shard(0).stream, settings.group, id="0")
    redis_conn.xgroup_create(settings.keys.shard(0).stream, "slow-reader", id="0")
    entries = redis_conn.xreadgroup(settings.group, "c", {settings.keys.shard(0).stream: ">"})[0][1]
    redis_conn.xack(settings.keys.shard(0).stream, settings.group, *[i for i, _ in entries])
    redis = redis_client(settings.redis_url or "")
    try:

        async def trim_once() -> int:
            return await trim_acknowledged(redis, settings.keys.shard(0).stream, threshold=5)

        assert await trim_once() == 0  # slow-reader has read nothing
        redis_conn.xreadgroup("slow-reader", "c", {settings.keys.shard(0).stream: ">"}, count=20)
        assert await trim_once() == 0  # read but not acknowledged: still pending
        slow = redis_conn.xpending_range(
            settings.keys.shard(0).stream, "slow-reader", "-", "+", 100
        )
        redis_conn.xack(
            settings.keys.shard(0).stream, "slow-reader", *[p["message_id"] for p in slow[:12]]
        )
        assert await trim_once() == 12
    finally:
        await redis.aclose()
    assert redis_conn.xlen(settings.keys.shard(0).stream) == 18


def test_backpressure_answers_503_and_drops_nothing_accepted(
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    redis_conn: redis.Redis,
) -> None:
    settings = make_settings(backlog_high_water=20, trim_threshold=10)
    ingest = make_client(settings, frozenset({Role.INGEST}))
    accepted = 0

    def until_refused() -> bool | None:
        nonlocal accepted
        response = ingest.post("/event", json=event("pressure", timestamp=f"{D0}T00:00:00Z"))
        if response.status_code == 202:
            accepted += 1
            return None
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "backlog" in response.json()["error"]
        return True

    wait_for(until_refused, what="a 503 from ingest")
    assert accepted >= 20
    assert redis_conn.xlen(settings.keys.shard(0).stream) == accepted
    client = make_client(settings)
    poll_stats(client, lambda b: b["total_views"] == accepted, site_id="pressure", date=D0)


def test_queue_health_reports_backlog_and_dead_letters(
    client: TestClient, ch: Client, settings: Settings, redis_conn: redis.Redis
) -> None:
    ch.command("DETACH TABLE events")
    try:
        client.post("/events", json=[event("q")] * 5)

        def five_pending() -> dict[str, Any] | None:
            state: dict[str, Any] = client.get("/health/queue").json()
            return state if state["pending"] == 5 else None

        state = wait_for(five_pending, what="5 pending")
        assert state["group"] == settings.group
        assert [shard["stream"] for shard in state["shards"]] == [settings.keys.shard(0).stream]
        assert state["length"] == 5 and state["consumers"] == 1 and state["dead_letters"] == 0
        assert state["lag"] == 0 and state["oldest_pending_age_s"] >= 0
    finally:
        ch.command("ATTACH TABLE events")
    drained(redis_conn, settings)
    assert client.get("/api/health/queue").json()["pending"] == 0

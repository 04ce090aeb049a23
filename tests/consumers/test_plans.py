"""An insert interrupted between the raw part and the views is completed, never skipped.

ClickHouse writes `events`' part first and the materialized views' parts after it; a
crash in between leaves the raw rows stored and the aggregates without them. The
interruption is made deterministic here with an extra materialized view that throws
while a flag row exists: the insert then fails after `events` (and `daily_totals`)
took it, and before `daily_pages` did, exactly as a SIGKILL at that point would leave it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from clickhouse_connect.driver.client import Client

from consumers.processor import BatchProcessor
from consumers.sink import ClickHouseSink, batch_token
from foundation.errors import SinkUnavailable, Stopping
from foundation.settings import Settings
from tests.helpers import INTERRUPT, event, row_of, stream_entry


def interrupt_inserts(ch: Client) -> None:
    for statement in INTERRUPT:
        ch.command(statement)


def resume_inserts(ch: Client) -> None:
    ch.command("DROP VIEW interrupt_mv")


def table_counts(ch: Client, site: str) -> dict[str, int]:
    def one(sql: str) -> int:
        return int(ch.query(sql, parameters={"s": site}).result_rows[0][0] or 0)

    return {
        "rows": one("SELECT count() FROM events WHERE site_id = {s:String}"),
        "distinct": one("SELECT uniqExact(event_id) FROM events WHERE site_id = {s:String}"),
        "total_views": one("SELECT sum(views) FROM daily_totals WHERE site_id = {s:String}"),
        "users": one("SELECT uniqExactMerge(users) FROM daily_totals WHERE site_id = {s:String}"),
        "path_views": one("SELECT sum(views) FROM daily_pages WHERE site_id = {s:String}"),
    }


def exact(n: int, users: int) -> dict[str, int]:
    return {"rows": n, "distinct": n, "total_views": n, "users": users, "path_views": n}


def test_replaying_a_partial_insert_with_its_token_completes_every_table(schema: Client) -> None:
    """The ClickHouse behaviour the mechanism relies on, checked on chdb itself."""
    rows = [row_of(event("partial", f"/{i % 4}", user_id=f"u{i % 5}")) for i in range(40)]
    sink = ClickHouseSink(schema)
    interrupt_inserts(schema)
    with pytest.raises(SinkUnavailable, match="interrupted"):
        sink.insert(rows, "token-1")
    partial = table_counts(schema, "partial")
    # The raw rows are in; the views after the interrupting one are not (which views come
    # first is ClickHouse's order of dependent views).
    assert partial["rows"] == 40 and min(partial["total_views"], partial["path_views"]) < 40
    resume_inserts(schema)
    sink.insert(rows, "token-1")
    assert table_counts(schema, "partial") == exact(40, 5)
    sink.insert(rows, "token-1")  # and once complete, the same token is a no-op
    assert table_counts(schema, "partial") == exact(40, 5)


def processor(settings: Settings, name: str, conn: Any, ch: Client) -> BatchProcessor:
    return BatchProcessor(settings, settings.keys.shard(0), name, conn, ClickHouseSink(ch))


async def interrupted_batch(
    settings: Settings, conn: Any, ch: Client, n: int, site: str
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Read `n` new entries as consumer c1 and leave their insert half written."""
    for i in range(n):
        await conn.xadd(
            settings.keys.shard(0).stream,
            stream_entry(event(site, f"/{i % 7}", user_id=f"u{i % 9}")),
        )
    reply: Any = await conn.xreadgroup(
        settings.group, "c1", {settings.keys.shard(0).stream: ">"}, count=n
    )
    entries = list(reply[0][1])
    first = processor(settings, "c1", conn, ch)
    interrupt_inserts(ch)

    async def stop_once_raw_rows_are_in() -> None:
        # The insert fails after the raw part; the processor retries until it is stopped,
        # which leaves the batch pending, as a SIGKILL at that moment would.
        while table_counts(ch, site)["rows"] < n:
            await asyncio.sleep(0.02)
        first.stop()

    outcome, _ = await asyncio.gather(
        first.process([i for i, _ in entries], [f for _, f in entries]),
        stop_once_raw_rows_are_in(),
        return_exceptions=True,
    )
    assert isinstance(outcome, Stopping), outcome
    partial = table_counts(ch, site)
    assert partial["rows"] == n and min(partial["total_views"], partial["path_views"]) < n
    resume_inserts(ch)
    return entries


@pytest.mark.anyio
@pytest.mark.parametrize("recut", ["same batch", "re-cut and reordered", "split between two"])
async def test_insert_interrupted_between_raw_part_and_views_counts_once(
    recut: str, schema: Client, settings: Settings, aredis: Any, redis_conn: redis.Redis
) -> None:
    site = f"cut-{uuid.uuid4().hex[:6]}"
    entries = await interrupted_batch(settings, aredis, schema, 60, site)
    ids = [i for i, _ in entries]
    fields = [f for _, f in entries]
    if recut == "same batch":
        await processor(settings, "c1", aredis, schema).process(ids, fields, redelivered=True)
    elif recut == "re-cut and reordered":
        # A restart reads its pending entries in pieces: the tail first, then the rest.
        again = processor(settings, "c1", aredis, schema)
        await again.process(ids[45:], fields[45:], redelivered=True)
        await again.process(ids[:45], fields[:45], redelivered=True)
    else:
        # Another consumer reclaims a part; the replay fetches the rest of the insert.
        claimed = redis_conn.xclaim(
            settings.keys.shard(0).stream, settings.group, "c2", 0, ids[:20]
        )
        assert len(claimed) == 20
        await processor(settings, "c2", aredis, schema).process(
            ids[:20], fields[:20], redelivered=True
        )
    assert redis_conn.xpending(settings.keys.shard(0).stream, settings.group)["pending"] == 0
    assert redis_conn.hlen(settings.keys.shard(0).plans(settings.group)) == 0
    assert table_counts(schema, site) == exact(60, 9)


@pytest.mark.anyio
async def test_plans_are_recorded_before_the_insert_and_forgotten_with_the_ack(
    schema: Client, settings: Settings, aredis: Any, redis_conn: redis.Redis
) -> None:
    site = f"plan-{uuid.uuid4().hex[:6]}"
    entries = await interrupted_batch(settings, aredis, schema, 10, site)
    ids = [i for i, _ in entries]
    plans_key = settings.keys.shard(0).plans(settings.group)
    recorded = redis_conn.hgetall(plans_key)
    assert list(recorded) == [batch_token(settings.keys.shard(0).stream, ids).encode()]
    assert recorded[next(iter(recorded))].split(b",") == ids
    await processor(settings, "c1", aredis, schema).process(
        ids, [f for _, f in entries], redelivered=True
    )
    assert redis_conn.hlen(plans_key) == 0


@pytest.mark.anyio
async def test_same_event_id_in_two_sites_is_two_events(
    schema: Client, settings: Settings, aredis: Any, redis_conn: redis.Redis
) -> None:
    """The stored-ID check matches (site, event_id): site A's ID never hides site B's event."""
    shared = str(uuid.uuid4())
    batches = [
        [event("tenant-a", "/", event_id=shared)],
        # Site A's next event is checked in the same query as site B's copy of the ID.
        [
            event("tenant-a", "/next", event_id=str(uuid.uuid4())),
            event("tenant-b", "/", event_id=shared),
        ],
    ]
    for batch in batches:
        for body in batch:
            await aredis.xadd(settings.keys.shard(0).stream, stream_entry(body, client_id=True))
        reply: Any = await aredis.xreadgroup(
            settings.group, "c1", {settings.keys.shard(0).stream: ">"}
        )
        entries = reply[0][1]
        await processor(settings, "c1", aredis, schema).process(
            [i for i, _ in entries], [f for _, f in entries]
        )
    assert table_counts(schema, "tenant-a")["rows"] == 2
    assert table_counts(schema, "tenant-b")["rows"] == 1


# One process: migrate a fresh chdb path (first run only) and insert a fixed batch with
# a fixed token; print what each table holds.
REPLAY_AFTER_RESTART = """
import json, sys, uuid
from datetime import UTC, datetime, timedelta
from consumers.sink import WRITER_SESSION, ClickHouseSink
from hitstream.connections import clickhouse_client
from foundation.settings import Settings
from schemas import entry
from schemas.migrate import migrate
settings = Settings(clickhouse_url="chdb://" + sys.argv[1], redis_url="redis://unused")
client = clickhouse_client(settings, WRITER_SESSION)
migrate(client, 90)
day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")  # inside the raw TTL
rows = [
    entry.encode_row(event_id=str(uuid.UUID(int=i + 1)), site_id="s", event_type="pageview",
                     path=f"/{i % 7}", user_id=f"u{i % 5}", ts=day + " 10:00:00.000",
                     received_at=day + " 10:00:00.000", visitor_id=i % 9 + 1)
    for i in range(200)
]
ClickHouseSink(client).insert(rows, "the-same-token")
one = lambda q: int(client.query(q).result_rows[0][0])
print(json.dumps([one("SELECT count() FROM events"), one("SELECT sum(views) FROM daily_totals"),
                  one("SELECT sum(views) FROM daily_pages")]))
"""


@pytest.mark.e2e
def test_an_insert_replayed_after_the_engine_restarts_is_written_once(tmp_path: Path) -> None:
    """The first process creates the schema (every migration) and inserts; a new process
    (the engine restarted) replays the same insert: every table must skip it. A view
    changed with MODIFY QUERY failed this (daily_totals got the batch twice)."""
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", REPLAY_AFTER_RESTART, str(tmp_path / "ch")],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(out.stdout.strip().splitlines()[-1]) == [200, 200, 200]

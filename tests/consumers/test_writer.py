"""The write step alone, on real engines: plans recorded, poison bisected out, retried,
dead-lettered; the rest inserted once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from anyio import CapacityLimiter
from clickhouse_connect.driver.client import Client

from consumers.calls import SinkCalls
from consumers.outcome import Outcome
from consumers.pending import PendingEntries
from consumers.plans import Plans
from consumers.retries import RetryPolicy
from consumers.sink import ClickHouseSink
from consumers.worker import ensure_group
from consumers.writer import BatchWriter
from foundation.errors import RowsRejected, SinkUnavailable
from foundation.metrics import Metrics
from foundation.settings import Settings
from hitstream.connections import redis_client
from schemas import entry
from schemas.entry import Entry, decode
from tests.helpers import event, stream_entry

BAD_UUID = b'{"event_id":"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz","site_id":"writer"}'


@pytest.fixture
def tuned(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(max_deliveries=3, insert_backoff_initial_s=0.01)


@pytest.fixture
async def aredis(tuned: Settings) -> AsyncIterator[Any]:
    conn = redis_client(tuned.redis_url or "")
    await ensure_group(conn, tuned.keys.shard(0).stream, tuned.group)
    yield conn
    await conn.aclose()


def writer(settings: Settings, conn: Any, ch: Client) -> tuple[BatchWriter, Plans]:
    stream = settings.keys.shard(0).stream
    stopping = asyncio.Event()
    pending = PendingEntries(settings, conn, stream, "c1")
    unavailable = RetryPolicy.from_settings(settings, (SinkUnavailable,), stopping)
    rejected = RetryPolicy.from_settings(
        settings, (RowsRejected,), stopping, attempts=settings.max_deliveries
    )
    plans = Plans(conn, settings.keys.shard(0).plans(settings.group))
    calls = SinkCalls(unavailable, pending, CapacityLimiter(1))
    made = BatchWriter(stream, ClickHouseSink(ch), calls, plans, pending, rejected, Metrics())
    return made, plans


async def delivered(conn: Any, settings: Settings, rows: list[dict[bytes, bytes]]) -> list[Entry]:
    stream = settings.keys.shard(0).stream
    for fields in rows:
        await conn.xadd(stream, fields)
    reply: Any = await conn.xreadgroup(settings.group, "c1", {stream: ">"}, count=len(rows))
    items = [decode(entry_id, fields) for entry_id, fields in reply[0][1]]
    assert all(item is not None for item in items)
    return [item for item in items if item is not None]


def stored(ch: Client) -> int:
    return int(ch.query("SELECT count() FROM events").result_rows[0][0])


@pytest.mark.anyio
async def test_a_poison_row_is_bisected_out_and_dead_lettered(
    tuned: Settings, aredis: Any, schema: Client
) -> None:
    good = [stream_entry(event("writer", f"/{i}")) for i in range(5)]
    items = await delivered(aredis, tuned, [*good[:2], entry.fields(BAD_UUID), *good[2:]])
    write, plans = writer(tuned, aredis, schema)
    outcome = Outcome()
    await write.write(items, outcome)
    assert stored(schema) == 5
    [letter] = outcome.letters
    assert letter.source_id == items[2].entry_id and "(after 3 attempts)" in letter.error
    # The recorded plans are the leaves of the bisection: they cover the batch once.
    recorded = await plans.touching(item.entry_id for item in items)
    assert sorted(i for plan in recorded for i in plan.ids) == sorted(i.entry_id for i in items)
    assert {plan.token for plan in recorded} <= set(outcome.tokens)


@pytest.mark.anyio
async def test_writing_a_plan_again_is_a_no_op(
    tuned: Settings, aredis: Any, schema: Client
) -> None:
    items = await delivered(aredis, tuned, [stream_entry(event("writer")) for _ in range(3)])
    write, plans = writer(tuned, aredis, schema)
    plan = write.plan_of(items)
    await plans.record(plan)
    for _ in range(2):
        await write.write(items, Outcome(), plan)
    assert stored(schema) == 3

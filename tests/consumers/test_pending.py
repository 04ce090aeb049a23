"""A consumer's pending entries on a real Valkey: counts, fetching, and the lease's claim."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from consumers.pending import PendingEntries
from foundation.settings import Settings
from tests.helpers import event, stream_entry


async def delivered(conn: Any, settings: Settings, consumer: str, n: int) -> list[bytes]:
    """Add `n` entries and deliver them to `consumer`; their IDs."""
    stream = settings.keys.shard(0).stream
    for i in range(n):
        await conn.xadd(stream, stream_entry(event("pending", f"/{i}")))
    reply: Any = await conn.xreadgroup(settings.group, consumer, {stream: ">"}, count=n)
    return [entry_id for entry_id, _ in reply[0][1]]


async def idle_ms(conn: Any, settings: Settings) -> dict[bytes, int]:
    rows: Any = await conn.xpending_range(
        settings.keys.shard(0).stream, settings.group, min="-", max="+", count=100
    )
    return {row["message_id"]: int(row["time_since_delivered"]) for row in rows}


def pending_of(settings: Settings, conn: Any, consumer: str) -> PendingEntries:
    return PendingEntries(settings, conn, settings.keys.shard(0).stream, consumer)


@pytest.mark.anyio
async def test_counts_are_of_this_consumers_entries_only(settings: Settings, aredis: Any) -> None:
    mine = await delivered(aredis, settings, "c1", 2)
    theirs = await delivered(aredis, settings, "c2", 1)
    counts = await pending_of(settings, aredis, "c1").delivery_counts(mine + theirs)
    assert counts == dict.fromkeys(mine, 1)


@pytest.mark.anyio
async def test_fetch_reads_entries_still_in_the_stream(settings: Settings, aredis: Any) -> None:
    ids = await delivered(aredis, settings, "c2", 2)
    await aredis.xdel(settings.keys.shard(0).stream, ids[1])
    found = await pending_of(settings, aredis, "c1").fetch(ids)
    assert list(found) == [ids[0]] and found[ids[0]].entry_id == ids[0]


@pytest.mark.anyio
async def test_the_lease_claims_again_once_a_third_of_the_idle_bound_passed(
    settings: Settings, aredis: Any
) -> None:
    ids = await delivered(aredis, settings, "c1", 2)
    now = [0.0]
    lease = pending_of(settings, aredis, "c1").lease(ids, clock=lambda: now[0])
    third = settings.claim_idle_ms / 3000
    await asyncio.sleep(0.3)  # the entries age
    now[0] = third - 1
    await lease.renew_if_due()
    assert min((await idle_ms(aredis, settings)).values()) >= 300, "not due: not claimed"
    now[0] = third + 1
    await lease.renew_if_due()
    assert max((await idle_ms(aredis, settings)).values()) < 300, "due: claimed again"
    assert not lease.due()


@pytest.mark.anyio
async def test_entries_reclaimed_elsewhere_are_not_taken_back(
    settings: Settings, aredis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await delivered(aredis, settings, "c1", 2)
    stream = settings.keys.shard(0).stream
    await aredis.xclaim(stream, settings.group, "c2", min_idle_time=0, message_ids=[ids[1]])
    await pending_of(settings, aredis, "c1").keep_claim(ids)
    owners: Any = await aredis.xpending_range(stream, settings.group, min="-", max="+", count=9)
    assert {row["message_id"]: row["consumer"] for row in owners} == {
        ids[0]: b"c1",
        ids[1]: b"c2",
    }
    assert "1 entries of this batch were reclaimed elsewhere" in caplog.text

"""Appending validated events to the Redis Stream: the only write ingest does."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from foundation import lua
from foundation.clients import RedisClient
from foundation.errors import REDIS_ERRORS, StreamUnavailable
from foundation.groupcommit import GroupCommit
from foundation.keys import RedisKeys, ShardKeys, shard_of
from foundation.scriptcall import run_script
from ingest.encode import Encoded
from ingest.visitors import DAY_S, salt_expiry
from schemas.entry import (
    CLIENT_ID_FIELD,
    CLIENT_ID_MARK,
    NUMBER_DAY,
    NUMBER_SHARD,
    ROW_FIELD,
    TAIL,
    TAIL_FORMAT,
)

log = logging.getLogger(__name__)

# Client-chosen event IDs are remembered per site, in one Redis set per slice of the
# dedup window (16-byte members: 39 bytes of Redis memory per ID, measured, against ~133
# for a key per ID). An ID is found if it is in the current slice or any of the
# DEDUP_SLICES before it, so it is remembered for at least the window and at most one
# slice longer; each slice's set expires as a whole.
DEDUP_SLICES = 6

# Ingest answers 503 once Redis uses this share of its maxmemory (if it has one), so
# the stream never reaches the point where Redis refuses the consumers' acknowledgements.
MEMORY_HIGH_WATER = 0.9
# If the backlog could not be read for this long, ingest refuses (it cannot tell).
STALE_AFTER_S = 2.0

# How long a script call's mark outlives it: longer than redis-py goes on resending a
# call whose connection broke (3 more tries, a few seconds apart, each within its 5 s
# socket timeout).
CALL_MARK_S = 60

# A visit: a visitor's events with no gap of this long between them.
VISIT_GAP_MS = 30 * 60 * 1000

# Ingest's one write (ingest/lua/append_once.lua; its contract is in its header): each
# row appended once per client event_id and dedup window, with its visitor's number
# (ingest/lua/numbers.lua) and its visit's id (ingest/lua/visits.lua) written in,
# atomically.
APPEND_ONCE = lua.load(
    "ingest", "append_once", needs=(lua.load("ingest", "visits"), lua.load("ingest", "numbers"))
)


def append_args(
    keys: ShardKeys, dedup_window_s: int, visitor_numbers: int
) -> list[str | bytes | int]:
    """APPEND_ONCE's arguments before the events, for one shard: what the script takes
    from its owners (the entry's field names, the row's tail and the numbers' layout:
    schemas/entry.py; when a salt expires: ingest/visitors.py)."""
    return [
        keys.dedup,
        dedup_window_s,
        DEDUP_SLICES,
        keys.visits,
        VISIT_GAP_MS,
        CALL_MARK_S,
        ROW_FIELD,
        CLIENT_ID_FIELD,
        CLIENT_ID_MARK,
        TAIL,
        TAIL_FORMAT,
        keys.numbers,
        DAY_S,
        salt_expiry(0),
        NUMBER_DAY,
        (keys.index or 0) * NUMBER_SHARD,
        visitor_numbers,
    ]


class PartlyStored(StreamUnavailable):
    """A batch over several shards of which some shards took their part and others did
    not: `stored` holds the indexes (in the batch) of the events that are stored."""

    def __init__(self, message: str, stored: list[int]) -> None:
        super().__init__(message)
        self.stored = stored


class _Shard:
    """The appends to one shard's stream: one script call per batch, and the group
    commit of single events (each is answered once its entry is stored)."""

    def __init__(
        self, script: AsyncScript, keys: ShardKeys, dedup_window_s: int, visitor_numbers: int
    ) -> None:
        self._script = script
        self.stream = keys.stream
        self._calls = keys.calls
        self._args = append_args(keys, dedup_window_s, visitor_numbers)
        self._singles: GroupCommit[Encoded, None] = GroupCommit(self._run_singles, _unavailable)
        self.name = keys.name
        # The shard's length as last read, and when (ingest/stream.py watch_backlog).
        self.length = 0
        self.read_at = time.monotonic()

    def refusal(self, high_water: int, now: float) -> str | None:
        """Why this shard must refuse now, or None."""
        if now - self.read_at > STALE_AFTER_S:
            return f"the backlog of shard {self.name} could not be read; Redis is not answering"
        if self.length >= high_water:
            return f"backlog of {self.length} entries in shard {self.name}"
        return None

    async def run(self, events: Sequence[Encoded]) -> None:
        """One EVALSHA appends them all, atomically (far cheaper than one XADD each)."""
        args = list(self._args)
        for e in events:
            client_id = e.id_bytes if e.client_id else b""
            args += [e.row, e.site_id, client_id, e.visitor_id, e.ts_ms, e.number_day]
        call = self._calls + os.urandom(8).hex()
        await run_script(self._script, [self.stream, call], args)

    async def one(self, event: Encoded) -> None:
        """Append a single event with the others waiting on this shard (group commit)."""
        await self._singles.submit(event)

    async def _run_singles(self, events: Sequence[Encoded]) -> list[None]:
        await self.run(events)
        return [None] * len(events)


def _unavailable(exc: Exception) -> Exception | None:
    """A Redis failure of an append, as ingest answers it (503)."""
    return StreamUnavailable(str(exc)) if isinstance(exc, REDIS_ERRORS) else None


class StreamWriter:
    """Appends encoded events to the stream shard of their site; a batch is appended
    atomically where it can be: all of it when its events share a shard (one site's
    always do), each shard's part atomically otherwise (PartlyStored says which).

    Events whose event_id came from the client are appended at most once per site and
    dedup window (a client retry inside the window is acknowledged, not re-added).
    """

    def __init__(
        self,
        redis: RedisClient,
        keys: RedisKeys,
        dedup_window_s: int,
        high_water: int,
        visitor_numbers: int,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._probe = keys.health_probe
        self._high_water = high_water
        script = redis.register_script(APPEND_ONCE)
        self._shards = [
            _Shard(script, shard, dedup_window_s, visitor_numbers) for shard in keys.all_shards
        ]
        self.memory_share = 0.0
        self._memory_read_at = time.monotonic()

    def refusal(self, events: Sequence[Encoded] = ()) -> str | None:
        """Why ingest must refuse `events` now (503; no events: any event), or None: a
        long backlog in their shard, some Redis server nearly full, or no reading of
        either for STALE_AFTER_S (Redis not answering). A shard whose master is down
        refuses its own sites only."""
        now = time.monotonic()
        if now - self._memory_read_at > STALE_AFTER_S:
            return "Redis memory could not be read; Redis is not answering"
        if self.memory_share >= MEMORY_HIGH_WATER:
            return f"Redis memory {self.memory_share:.0%} full"
        count = self._keys.shards
        wanted = (
            {shard_of(e.site_id, count) for e in events} if events and count > 1 else range(count)
        )
        for index in wanted:
            refusal = self._shards[index].refusal(self._high_water, now)
            if refusal is not None:
                return refusal
        return None

    async def can_append(self) -> bool:
        """For /health: True when ingest would take an event now.

        Redis must also take a write (a full disk makes it refuse them with MISCONF, a
        full memory with OOM, while it still answers reads).
        """
        if self.refusal() is not None:
            return False
        await self._redis.set(self._probe, b"1", px=10_000)
        return True

    async def append(self, events: Sequence[Encoded]) -> None:
        """Store all events or none of them (of each shard's part, on several shards);
        returns only once Redis has them."""
        count = self._keys.shards
        first = shard_of(events[0].site_id, count)
        if count == 1 or all(shard_of(e.site_id, count) == first for e in events):
            shard = self._shards[first]
            try:
                if len(events) == 1 and not events[0].client_id:
                    await shard.one(events[0])
                else:
                    await shard.run(events)
            except REDIS_ERRORS as exc:
                raise StreamUnavailable(str(exc)) from exc
            return
        by_shard: dict[int, list[int]] = {}
        for index, event in enumerate(events):
            by_shard.setdefault(shard_of(event.site_id, count), []).append(index)
        parts = list(by_shard.items())
        outcomes = await asyncio.gather(
            *(self._shards[k].run([events[i] for i in indexes]) for k, indexes in parts),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if not failures:
            return
        stored = sorted(
            i for (_, indexes), o in zip(parts, outcomes, strict=True) if o is None for i in indexes
        )
        for failure in failures:
            if not isinstance(failure, REDIS_ERRORS):
                raise failure
        raise PartlyStored(str(failures[0]), stored)

    async def watch_backlog(self, interval_s: float) -> None:
        """Keep each shard's length and `memory_share` (the fullest server) current; run
        as a background task. Each shard is read on its own, so a master that is down
        leaves only its shards without a reading.

        A failed reading is not ignored: once the last good one is STALE_AFTER_S old,
        `refusal()` says so and ingest answers 503.
        """
        if not isinstance(self._redis, RedisCluster):
            await self._watch(interval_s, self._read_all, "the backlog")
            return
        await asyncio.gather(
            self._watch(interval_s, self._read_memory, "Redis memory"),
            *(
                self._watch(interval_s, functools.partial(self._read_length, shard), shard.name)
                for shard in self._shards
            ),
        )

    async def _watch(
        self, interval_s: float, read: Callable[[], Awaitable[None]], what: str
    ) -> None:
        failing = False
        while True:
            try:
                await read()
                failing = False
            except (*REDIS_ERRORS, OSError) as exc:
                if not failing:
                    log.warning("cannot read %s (ingest refuses meanwhile): %s", what, exc)
                failing = True
            except Exception:  # a bug must not end the watch: ingest would refuse for ever
                if not failing:
                    log.exception("cannot read %s (ingest refuses meanwhile)", what)
                failing = True
            await asyncio.sleep(interval_s)

    async def _read_all(self) -> None:
        """One server: every shard's length and the memory in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in self._shards:
                pipe.xlen(shard.stream)
            pipe.info("memory")
            *lengths, memory = await pipe.execute()
        now = time.monotonic()
        for shard, length in zip(self._shards, lengths, strict=True):
            shard.length, shard.read_at = int(length), now
        self.memory_share, self._memory_read_at = _memory_share(memory), now

    async def _read_length(self, shard: _Shard) -> None:
        shard.length = int(await self._redis.xlen(shard.stream))
        shard.read_at = time.monotonic()

    async def _read_memory(self) -> None:
        self.memory_share = max(map(_memory_share, await self._memory()))
        self._memory_read_at = time.monotonic()

    async def _memory(self) -> list[dict[str, Any]]:
        """INFO memory of every server that holds a shard (each primary of a cluster)."""
        if not isinstance(self._redis, RedisCluster):
            return [await self._redis.info("memory")]
        # One primary at a time: one that is down (its shards have no reading either)
        # must not leave the others unread.
        cluster = self._redis
        await cluster.initialize()  # the primaries are known once it is (a no-op after)
        replies = await asyncio.gather(
            *(cluster.info("memory", target_nodes=node) for node in cluster.get_primaries()),
            return_exceptions=True,
        )
        found = [reply for reply in replies if isinstance(reply, dict)]
        if not found:
            raise next(r for r in replies if isinstance(r, BaseException))
        return found


def _memory_share(memory: dict[str, Any]) -> float:
    limit = int(memory.get("maxmemory") or 0)
    return int(memory["used_memory"]) / limit if limit else 0.0

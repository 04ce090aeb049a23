"""What FastStream's stream subscriber does not do, done in batches.

- A restarted consumer first finishes its own pending entries (FastStream reads only `>`).
- Entries left pending by a dead consumer are reclaimed with XAUTOCLAIM, a batch at a
  time (FastStream's `min_idle_time` claims one entry per call and then reads no new ones).
- Entries delivered to this consumer by a read whose answer never arrived (timed out or
  cut under load: Redis delivered them, FastStream logged a fetch error and read on) are
  read again from this consumer's own pending list within seconds, not left for the
  idle reclaim.
- The stream is trimmed, but never past an entry some group has not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from consumers.processor import BatchProcessor
from consumers.queue import stream_id_key
from hitstream.errors import Stopping
from hitstream.settings import Settings

log = logging.getLogger(__name__)

# Consumers with nothing pending and idle this long are removed from the group.
STALE_CONSUMER_IDLE_MS = 3_600_000
# How often a consumer looks for entries whose read was lost. Pending longer than the
# reads' own deadline (worker.lost_after_ms), held by no handler: that read has failed,
# so no answer can still bring them.
LOST_READ_CHECK_S = 1.0


async def trim_acknowledged(redis: aioredis.Redis, stream: str, threshold: int) -> int:
    """Drop entries every group has acknowledged, once the stream is longer than
    `threshold`; return how many went."""
    if await redis.xlen(stream) <= threshold:
        return 0
    floor: tuple[int, int] | None = None
    for group in await redis.xinfo_groups(stream):
        summary = await redis.xpending(stream, group["name"])
        if summary["pending"]:
            candidate = stream_id_key(summary["min"])
        else:
            ms, seq = stream_id_key(group["last-delivered-id"])
            candidate = (ms, seq + 1)
        floor = candidate if floor is None else min(floor, candidate)
    if floor is None:
        return 0
    # Exact (not `~`): the floor is a hard bound, and trimming runs only every few seconds.
    removed = int(await redis.xtrim(stream, minid=f"{floor[0]}-{floor[1]}", approximate=False))
    if removed:
        log.info("trimmed %d acknowledged entries", removed)
    return removed


class Recovery:
    """Own-pending drain, reclaiming and trimming for one consumer."""

    def __init__(
        self, settings: Settings, redis: aioredis.Redis, processor: BatchProcessor
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._processor = processor
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the batch in hand, then return from the loops."""
        self._stopping.set()

    async def drain_own_pending(self, at_shutdown: bool = False) -> int:
        """Process entries already delivered to this consumer name; return how many.

        At start-up that is what a previous run left; at shutdown, what a read cancelled
        mid-flight delivered (FastStream cancels its reader once the handler is done).
        """
        settings = self._settings
        done, cursor = 0, "0"
        while at_shutdown or not self._stopping.is_set():
            reply: Any = await self._redis.xreadgroup(
                settings.group,
                self._processor.consumer,
                {settings.keys.stream: cursor},
                count=settings.batch_size,
            )
            entries = reply[0][1] if reply else []
            if not entries:
                break
            await self._redeliver(entries)
            done += len(entries)
            cursor = entries[-1][0].decode()
        if done:
            log.info("finished %d entries left pending by this consumer", done)
        return done

    async def drain_lost_reads(self, lost_after_ms: int) -> int:
        """Process entries delivered to this consumer over `lost_after_ms` ago that no
        handler holds (their read's answer was lost); return how many."""
        settings = self._settings
        rows: Any = await self._redis.xpending_range(
            settings.keys.stream,
            settings.group,
            min="-",
            max="+",
            count=settings.batch_size,
            consumername=self._processor.consumer,
            idle=lost_after_ms,
        )
        holding = self._processor.holding
        lost = [row["message_id"] for row in rows if row["message_id"] not in holding]
        if not lost:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in lost:
                pipe.xrange(settings.keys.stream, entry_id, entry_id)
            replies: list[Any] = await pipe.execute()
        # One a reclaim took in hand meanwhile is left to it by process().
        entries = [entry for reply in replies for entry in reply]
        gone = {i for i, reply in zip(lost, replies, strict=True) if not reply}
        if gone:  # deleted from the stream by hand: nothing left to write
            await self._redis.xack(settings.keys.stream, settings.group, *gone)
        if entries:
            log.warning("read again %d entries whose read was lost (timed out)", len(entries))
            await self._redeliver(entries)
        return len(entries)

    async def watch_lost_reads(self, lost_after_ms: int) -> None:
        """Look for entries of lost reads every LOST_READ_CHECK_S until stopped."""

        async def look() -> None:
            await self.drain_lost_reads(lost_after_ms)

        await self._every(LOST_READ_CHECK_S, look, "looking for lost reads")

    async def _every(
        self, interval: float, step: Callable[[], Awaitable[object]], what: str
    ) -> None:
        """Run `step` every `interval` until stopped; a Redis error is logged and the next
        round tries again."""
        while not self._stopping.is_set():
            try:
                await step()
            except Stopping:
                return
            except RedisError as exc:
                log.warning("%s failed: %s", what, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)

    async def _redeliver(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        ids = [entry_id for entry_id, _ in entries]
        await self._processor.process(ids, [fields for _, fields in entries], redelivered=True)

    async def reclaim_once(self) -> int:
        """Claim and process entries idle longer than `claim_idle_ms`; return how many."""
        settings = self._settings
        claimed, start = 0, "0-0"
        while not self._stopping.is_set():
            claim: Any = await self._redis.xautoclaim(
                settings.keys.stream,
                settings.group,
                self._processor.consumer,
                min_idle_time=settings.claim_idle_ms,
                start_id=start,
                count=settings.batch_size,
            )
            next_start, entries, deleted = claim
            if deleted:
                # Gone from the stream (deleted by hand): nothing left to write.
                await self._redis.xack(settings.keys.stream, settings.group, *deleted)
            if entries:
                log.info("reclaimed %d idle pending entries", len(entries))
                await self._redeliver(entries)
                claimed += len(entries)
            start = next_start.decode() if isinstance(next_start, bytes) else str(next_start)
            if start == "0-0":
                break
        return claimed

    async def trim_once(self) -> int:
        """Drop acknowledged entries once the stream passes the threshold."""
        return await trim_acknowledged(
            self._redis, self._settings.keys.stream, self._settings.trim_threshold
        )

    async def forget_stale_consumers(self) -> None:
        """Remove long-idle consumers with nothing pending (dead replicas, old pids)."""
        settings = self._settings
        for info in await self._redis.xinfo_consumers(settings.keys.stream, settings.group):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if (
                name != self._processor.consumer
                and info["pending"] == 0
                and info["idle"] > STALE_CONSUMER_IDLE_MS
            ):
                await self._redis.xgroup_delconsumer(settings.keys.stream, settings.group, name)

    async def run(self, keep_reading: Callable[[], Awaitable[None]] | None = None) -> None:
        """Reclaim and trim every interval until stopped; `keep_reading` runs first in
        each round (the consumer's check that its group and subscriber still exist)."""

        async def maintain() -> None:
            if keep_reading is not None:
                await keep_reading()
            await self.reclaim_once()
            await self.trim_once()
            await self.forget_stale_consumers()

        await self._every(self._settings.maintenance_interval_s, maintain, "recovery round")

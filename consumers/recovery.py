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
import logging
from typing import Any

from consumers.processor import BatchProcessor
from consumers.queue import stream_id_key
from foundation.clients import RedisClient
from foundation.settings import Settings

log = logging.getLogger(__name__)

# Consumers with nothing pending and idle this long are removed from the group.
STALE_CONSUMER_IDLE_MS = 3_600_000
# How often a consumer looks for entries whose read was lost. Pending longer than the
# reads' own deadline (worker.lost_after_ms), held by no handler: that read has failed,
# so no answer can still bring them.
LOST_READ_CHECK_S = 1.0


async def trim_acknowledged(redis: RedisClient, stream: str, threshold: int) -> int:
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
    """Own-pending drain, reclaiming and trimming for one consumer of one shard."""

    def __init__(self, settings: Settings, redis: RedisClient, processor: BatchProcessor) -> None:
        self._settings = settings
        self._redis = redis
        self._processor = processor
        self._stream = processor.shard.stream
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
                {self._stream: cursor},
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
            self._stream,
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
                pipe.xrange(self._stream, entry_id, entry_id)
            replies: list[Any] = await pipe.execute()
        # One a reclaim took in hand meanwhile is left to it by process().
        entries = [entry for reply in replies for entry in reply]
        gone = {i for i, reply in zip(lost, replies, strict=True) if not reply}
        if gone:  # deleted from the stream by hand: nothing left to write
            await self._redis.xack(self._stream, settings.group, *gone)
        if entries:
            log.warning("read again %d entries whose read was lost (timed out)", len(entries))
            await self._redeliver(entries)
        return len(entries)

    async def _redeliver(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        ids = [entry_id for entry_id, _ in entries]
        await self._processor.process(ids, [fields for _, fields in entries], redelivered=True)

    async def reclaim_once(self) -> int:
        """Claim and process entries idle longer than `claim_idle_ms`; return how many."""
        settings = self._settings
        claimed, start = 0, "0-0"
        while not self._stopping.is_set():
            claim: Any = await self._redis.xautoclaim(
                self._stream,
                settings.group,
                self._processor.consumer,
                min_idle_time=settings.claim_idle_ms,
                start_id=start,
                count=settings.batch_size,
            )
            next_start, entries, deleted = claim
            if deleted:
                # Gone from the stream (deleted by hand): nothing left to write.
                await self._redis.xack(self._stream, settings.group, *deleted)
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
        return await trim_acknowledged(self._redis, self._stream, self._settings.trim_threshold)

    async def forget_stale_consumers(self) -> None:
        """Remove long-idle consumers with nothing pending (dead replicas, old pids)."""
        settings = self._settings
        for info in await self._redis.xinfo_consumers(self._stream, settings.group):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if (
                name != self._processor.consumer
                and info["pending"] == 0
                and info["idle"] > STALE_CONSUMER_IDLE_MS
            ):
                await self._redis.xgroup_delconsumer(self._stream, settings.group, name)

    async def maintain(self) -> None:
        """One maintenance round: reclaim, trim, forget stale consumers."""
        await self.reclaim_once()
        await self.trim_once()
        await self.forget_stale_consumers()

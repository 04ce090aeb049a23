"""One batch of stream entries: skip what is already stored, insert, isolate poison, XACK.

This is the consumers' hot path and the place the counted-once promise is kept, in a
chain of small steps:
- every insert carries a token made of its entries' IDs, and its entries are recorded
  (consumers/plans.py) before it is sent: a redelivered entry that belongs to a recorded
  insert is replayed as that insert, with its token (consumers/replay.py), so ClickHouse
  completes whichever tables a crash left without it and skips the rest;
- other redelivered entries, and any row whose event_id the client chose, are first
  checked against `events` by (site, event_id) (consumers/stored.py), so rows already
  stored are acknowledged without a second insert;
- rows ClickHouse rejects are isolated by bisection, retried up to `max_deliveries`
  times, then dead-lettered (consumers/writer.py); the rest of the batch is written and
  acknowledged;
- entries are acknowledged only after ClickHouse took them, with their dead letters and
  the end of their plans, in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from anyio import CapacityLimiter

from consumers.calls import SinkCalls
from consumers.deadletter import DeadLetters
from consumers.outcome import Outcome, decode_batch, without_exhausted
from consumers.pending import PendingEntries
from consumers.plans import Plans
from consumers.replay import PlanReplay
from consumers.retries import RetryPolicy, pause
from consumers.sink import ClickHouseSink
from consumers.stored import Key, without_stored
from consumers.writer import BatchWriter
from foundation.clients import RedisClient
from foundation.errors import RowsRejected, SinkUnavailable
from foundation.keys import ShardKeys
from foundation.metrics import Metrics
from foundation.settings import Settings

log = logging.getLogger(__name__)


class BatchProcessor:
    """Writes batches for one consumer of the group."""

    def __init__(
        self,
        settings: Settings,
        shard: ShardKeys,
        consumer: str,
        redis: RedisClient,
        sink: ClickHouseSink,
        metrics: Metrics | None = None,
        threads: CapacityLimiter | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics or Metrics()
        self.shard = shard
        self.consumer = consumer
        self._redis = redis
        self._sink = sink
        self._dead = DeadLetters(redis, shard)
        self._plans = Plans(redis, shard.plans(settings.group))
        self._stopping = asyncio.Event()
        # Entry IDs some call of `process` has in hand (the subscriber's batch, a
        # reclaimed one): the lost-read watcher must not process them a second time.
        self.holding: set[bytes] = set()
        self.pending = PendingEntries(settings, redis, shard.stream, consumer)
        unavailable = RetryPolicy.from_settings(
            settings, (SinkUnavailable,), self._stopping, what="ClickHouse unavailable"
        )
        rejected = RetryPolicy.from_settings(
            settings, (RowsRejected,), self._stopping, attempts=settings.max_deliveries
        )
        self._calls = SinkCalls(unavailable, self.pending, threads or CapacityLimiter(2))
        self.writer = BatchWriter(
            shard.stream, sink, self._calls, self._plans, self.pending, rejected, self._metrics
        )
        self._replay = PlanReplay(self._plans, self.pending, self.writer, settings.max_deliveries)

    def stop(self) -> None:
        """Stop retrying: a batch that cannot be written now stays pending for redelivery."""
        self._stopping.set()

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake at once when stopping begins."""
        await pause(self._stopping, seconds)

    async def process(
        self, ids: Sequence[bytes], entries: Sequence[dict[bytes, bytes]], redelivered: bool = False
    ) -> None:
        """Write what is new in the batch, dead-letter what cannot be written, then XACK.

        Redelivered entries that belong to a recorded plan are replayed as that plan,
        whatever else came with them; the rest are checked against what is stored.
        """
        # Entries another call has in hand (a reclaim and a lost read's rescue can both
        # come upon them) are left to it: taken here synchronously, before any await.
        mine = [(i, e) for i, e in zip(ids, entries, strict=True) if i not in self.holding]
        if not mine:
            return
        held = [i for i, _ in mine]
        self.holding.update(held)
        try:
            await self._process(held, [e for _, e in mine], redelivered)
        finally:
            self.holding.difference_update(held)

    async def _process(
        self, ids: Sequence[bytes], entries: Sequence[dict[bytes, bytes]], redelivered: bool
    ) -> None:
        outcome = Outcome(acks=list(ids))
        items = decode_batch(ids, entries, outcome)
        if redelivered and items:
            counts = await self.pending.delivery_counts([item.entry_id for item in items])
            items = await self._replay(items, counts, outcome)
            items = without_exhausted(items, counts, self._settings.max_deliveries, outcome)

        async def existing(sites: set[str], event_ids: set[str]) -> set[Key]:
            return await self._calls(items, lambda: self._sink.existing(sites, event_ids))

        fresh = await without_stored(items, redelivered, existing)
        await self.writer.write(fresh, outcome)
        await self._commit(outcome)

    async def _commit(self, outcome: Outcome) -> None:
        """Dead letters, acknowledgements and the end of their plans, all or nothing."""
        async with self._redis.pipeline(transaction=True) as pipe:
            self._dead.add(pipe, outcome.letters)
            if outcome.acks:
                pipe.xack(self.shard.stream, self._settings.group, *outcome.acks)
            self._plans.forget(pipe, outcome.tokens)
            await pipe.execute()
        for letter in outcome.letters:
            log.warning(
                "dead-lettered entry %s: %s",
                letter.source_id.decode(errors="replace"),
                letter.error,
            )
        self._metrics.dead_lettered.inc(len(outcome.letters))

"""One batch of stream entries: skip what is already stored, insert, isolate poison, XACK.

This is the consumers' hot path and the place the counted-once promise is kept:
- every insert carries a token made of its entries' IDs, and its entries are recorded
  (consumers/plans.py) before it is sent: a redelivered entry that belongs to a recorded
  insert is replayed as that insert, with its token, so ClickHouse completes whichever
  tables a crash left without it and skips the rest;
- other redelivered entries, and any row whose event_id the client chose, are first
  checked against `events` by (site, event_id), so rows already stored are acknowledged
  without a second insert;
- rows ClickHouse rejects are isolated by bisection, retried up to `max_deliveries`
  times, then dead-lettered; the rest of the batch is written and acknowledged;
- entries are acknowledged only after ClickHouse took them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread

from consumers.deadletter import DeadLetter, DeadLetters
from consumers.plans import Plan, Plans
from consumers.queue import stream_id_key
from consumers.sink import ClickHouseSink, batch_token
from foundation.clients import RedisClient
from foundation.errors import RowsRejected, SinkUnavailable, Stopping
from foundation.keys import ShardKeys
from foundation.metrics import Metrics
from foundation.settings import Settings
from schemas.entry import Entry, decode

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Outcome:
    """What one call of `process` commits at its end, in one transaction."""

    acks: list[bytes] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


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
        self._stream = shard.stream
        self._plans = Plans(redis, shard.plans(settings.group))
        self._stopping = asyncio.Event()
        # Entry IDs some call of `process` has in hand (the subscriber's batch, a
        # reclaimed one): the lost-read watcher must not process them a second time.
        self.holding: set[bytes] = set()
        # Threads of their own for the engine calls (shared by a consumer's shards): a
        # pool filled by queries (or anything else) never holds up a write.
        self._threads = threads or CapacityLimiter(2)

    def stop(self) -> None:
        """Stop retrying: a batch that cannot be written now stays pending for redelivery."""
        self._stopping.set()

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
        outcome = _Outcome(acks=list(ids))
        items: list[Entry] = []
        for entry_id, fields in zip(ids, entries, strict=True):
            item = decode(entry_id, fields)
            if item is not None:
                items.append(item)
            else:
                outcome.letters.append(
                    DeadLetter(entry_id, fields, "not a hitstream event entry", 1)
                )
        if redelivered and items:
            counts = await self._delivery_counts([item.entry_id for item in items])
            items = await self._replay_plans(items, counts, outcome)
            items = self._without_exhausted(items, counts, outcome)
        fresh = await self._without_stored(items, check_all=redelivered)
        await self._write(fresh, outcome)
        await self._commit(outcome)

    async def _commit(self, outcome: _Outcome) -> None:
        """Dead letters, acknowledgements and the end of their plans, all or nothing."""
        async with self._redis.pipeline(transaction=True) as pipe:
            self._dead.add(pipe, outcome.letters)
            if outcome.acks:
                pipe.xack(self._stream, self._settings.group, *outcome.acks)
            self._plans.forget(pipe, outcome.tokens)
            await pipe.execute()
        for letter in outcome.letters:
            log.warning(
                "dead-lettered entry %s: %s",
                letter.source_id.decode(errors="replace"),
                letter.error,
            )
        self._metrics.dead_lettered.inc(len(outcome.letters))

    async def _replay_plans(
        self, items: list[Entry], counts: dict[bytes, int], outcome: _Outcome
    ) -> list[Entry]:
        """Re-send every recorded insert these entries were part of, cut as the first time.

        The same token makes ClickHouse skip the tables that already took the insert and
        write the ones a crash left without it. Returns the entries no plan holds.
        """
        plans = await self._plans.touching(item.entry_id for item in items)
        if not plans:
            return items
        in_hand = {item.entry_id: item for item in items}
        elsewhere = [i for plan in plans for i in plan.ids if i not in in_hand]
        fetched = await self._fetch(elsewhere)
        for plan in plans:
            plan_items = [
                in_hand.get(i) or fetched[i] for i in plan.ids if i in in_hand or i in fetched
            ]
            outcome.acks += [i for i in plan.ids if i not in in_hand]
            deliveries = max((counts.get(i, 1) for i in plan.ids if i in in_hand), default=1)
            if deliveries > self._settings.max_deliveries:
                # A crash loop on this insert: give it up, whole, rather than forever.
                outcome.tokens.append(plan.token)
                outcome.letters += [
                    DeadLetter(
                        item.entry_id,
                        item.fields,
                        f"delivered {deliveries} times without being written "
                        "(an interrupted insert: it may be partly stored)",
                        deliveries,
                    )
                    for item in plan_items
                ]
                continue
            log.info("replaying an interrupted insert of %d entries as first cut", len(plan_items))
            await self._write(plan_items, outcome, plan)
        held = {i for plan in plans for i in plan.ids}
        return [item for item in items if item.entry_id not in held]

    async def _fetch(self, ids: list[bytes]) -> dict[bytes, Entry]:
        """Entries of a plan that were not redelivered with it (still pending elsewhere)."""
        if not ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xrange(self._stream, entry_id, entry_id)
            replies: list[Any] = await pipe.execute()
        found = {}
        for reply in replies:
            for entry_id, fields in reply:
                item = decode(entry_id, fields)
                if item is not None:
                    found[entry_id] = item
        if len(found) < len(ids):
            log.warning("%d entries of an interrupted insert are gone", len(ids) - len(found))
        return found

    def _without_exhausted(
        self, items: list[Entry], counts: dict[bytes, int], outcome: _Outcome
    ) -> list[Entry]:
        """Entries delivered more than `max_deliveries` times (crash loops) are given up."""
        if not items:
            return items
        limit = self._settings.max_deliveries
        keep = []
        for item in items:
            deliveries = counts.get(item.entry_id, 1)
            if deliveries <= limit:
                keep.append(item)
                continue
            message = f"delivered {deliveries} times without being written"
            outcome.letters.append(DeadLetter(item.entry_id, item.fields, message, deliveries))
        return keep

    async def _without_stored(self, items: list[Entry], check_all: bool) -> list[Entry]:
        """Drop rows whose (site, event_id) is already in ClickHouse or earlier in this batch.

        Event IDs are per site: one site's ID never hides another site's event.
        """
        checked: dict[bytes, tuple[str, str]] = {}
        for item in items:
            if not (check_all or item.client_id):
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                checked[item.entry_id] = (item.site_id(), _valid_uuid(item.event_id))
        if not checked:
            return items
        sites = {site for site, _ in checked.values()}
        event_ids = {event_id for _, event_id in checked.values()}
        stored = await self._with_backoff(items, lambda: self._sink.existing(sites, event_ids))
        seen: set[tuple[str, str]] = set()
        fresh = []
        for item in items:
            key = checked.get(item.entry_id)
            if key is not None:
                if key in stored or key in seen:
                    continue
                seen.add(key)
            fresh.append(item)
        if len(fresh) < len(items):
            log.info("skipped %d events already stored", len(items) - len(fresh))
        return fresh

    async def _write(self, items: list[Entry], outcome: _Outcome, plan: Plan | None = None) -> None:
        """Record the plan, insert; on rejected rows, bisect until each bad row is alone."""
        if not items:
            return
        if plan is None:
            plan = self._plan_of(items)
            await self._plans.record(plan)
        outcome.tokens.append(plan.token)
        rows = [item.row for item in items]
        try:
            self._failpoint("kill-before-insert")
            started = time.perf_counter()
            await self._with_backoff(items, lambda: self._sink.insert(rows, plan.token))
            self._failpoint("kill-after-insert")
            self._written(len(rows), time.perf_counter() - started)
            return
        except RowsRejected as exc:
            if len(items) == 1:
                outcome.letters += await self._retry_rejected(items[0], exc, plan.token)
                return
        middle = len(items) // 2
        halves = [items[:middle], items[middle:]]
        plans = [self._plan_of(half) for half in halves]
        await self._plans.split(plan, plans)
        for half, half_plan in zip(halves, plans, strict=True):
            await self._write(half, outcome, half_plan)

    def _written(self, rows: int, seconds: float) -> None:
        self._metrics.batch_rows.observe(rows)
        self._metrics.batch_seconds.observe(seconds)
        self._metrics.events_written.inc(rows)
        log.debug("inserted %d rows in %.1f ms", rows, seconds * 1000)

    def _plan_of(self, items: Sequence[Entry]) -> Plan:
        ids = tuple(item.entry_id for item in items)
        return Plan(batch_token(self._stream, ids), ids)

    def _failpoint(self, name: str) -> None:
        if self._settings.failpoint == name:
            log.warning("failpoint %s: killing this process", name)
            os.kill(os.getpid(), signal.SIGKILL)

    async def _retry_rejected(
        self, item: Entry, error: RowsRejected, token: str
    ) -> list[DeadLetter]:
        """A single rejected row gets `max_deliveries` attempts in all, then the dead letters."""
        delay = self._settings.insert_backoff_initial_s
        for _ in range(self._settings.max_deliveries - 1):
            await self._pause(delay)
            delay = min(delay * 2, self._settings.insert_backoff_max_s)
            try:
                await self._with_backoff([item], lambda: self._sink.insert([item.row], token))
                self._written(1, 0.0)
                return []
            except RowsRejected as exc:
                error = exc
        counts = await self._delivery_counts([item.entry_id])
        message = f"{error} (after {self._settings.max_deliveries} attempts)"
        return [DeadLetter(item.entry_id, item.fields, message, counts.get(item.entry_id, 1))]

    async def _with_backoff(self, items: Sequence[Entry], call: Callable[[], T]) -> T:
        """Run a blocking sink call until it succeeds; RowsRejected and shutdown end it."""
        delay = self._settings.insert_backoff_initial_s
        touched = time.monotonic()
        while True:
            try:
                return await to_thread.run_sync(call, limiter=self._threads)
            except SinkUnavailable as exc:
                if self._stopping.is_set():
                    raise Stopping(str(exc)) from exc
                log.warning("ClickHouse unavailable (%s); retrying in %.1fs", exc, delay)
            await self._pause(delay)
            delay = min(delay * 2, self._settings.insert_backoff_max_s)
            if time.monotonic() - touched > self._settings.claim_idle_ms / 3000:
                await self._keep_claim([item.entry_id for item in items])
                touched = time.monotonic()

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake at once when stopping begins."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _pause(self, seconds: float) -> None:
        await self.pause(seconds)
        if self._stopping.is_set():
            raise Stopping("shutting down")

    async def _keep_claim(self, ids: list[bytes]) -> None:
        """Reset the idle time of entries still ours, so no live consumer reclaims them."""
        mine = list(await self._delivery_counts(ids))
        if len(mine) < len(ids):
            log.warning("%d entries of this batch were reclaimed elsewhere", len(ids) - len(mine))
        if mine:
            await self._redis.xclaim(
                self._stream,
                self._settings.group,
                self.consumer,
                min_idle_time=0,
                message_ids=list[Any](mine),
                justid=True,
            )

    async def _delivery_counts(self, ids: list[bytes]) -> dict[bytes, int]:
        """Delivery count of each of `ids` still pending for (owned by) this consumer."""
        wanted = set(ids)
        rows: Any = await self._redis.xpending_range(
            self._stream,
            self._settings.group,
            min=min(ids, key=stream_id_key),
            max=max(ids, key=stream_id_key),
            # Our other in-flight batch may interleave: at most one batch more.
            count=len(ids) + self._settings.batch_size,
            consumername=self.consumer,
        )
        return {
            row["message_id"]: int(row["times_delivered"])
            for row in rows
            if row["message_id"] in wanted
        }


def _valid_uuid(text: str) -> str:
    parts = text.split("-")
    if [len(p) for p in parts] != [8, 4, 4, 4, 12]:
        raise ValueError(text)
    int("".join(parts), 16)
    return text

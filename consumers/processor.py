"""One batch of stream entries: skip what is already stored, insert, isolate poison, XACK.

This is the consumers' hot path and the place the counted-once promise is kept:
- every insert carries a token made of its entries' IDs (a replayed batch is a no-op);
- a redelivered batch, and any row whose event_id the client chose, is first checked
  against `events`, so rows already stored are acknowledged without a second insert;
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
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from anyio import to_thread

from consumers.deadletter import DeadLetter, DeadLetters
from consumers.sink import ClickHouseSink, RowsRejected, batch_token
from hitstream.errors import SinkUnavailable
from hitstream.settings import Settings
from ingest.stream import CLIENT_ID_FIELD, ROW_FIELD

log = logging.getLogger(__name__)

T = TypeVar("T")

# Rows written by ingest start with this (orjson keeps the key order of `encode`).
ROW_PREFIX = b'{"event_id":"'
_ID_END = len(ROW_PREFIX) + 36


@dataclass(frozen=True, slots=True)
class Item:
    """A stream entry that carries one of our event rows."""

    entry_id: bytes
    fields: dict[bytes, bytes]

    @property
    def row(self) -> bytes:
        return self.fields[ROW_FIELD]

    @property
    def event_id(self) -> str:
        return self.row[len(ROW_PREFIX) : _ID_END].decode()

    @property
    def client_id(self) -> bool:
        return CLIENT_ID_FIELD in self.fields


class Stopping(SinkUnavailable):
    """Shutdown began while the batch could not be written: it stays pending."""


class BatchProcessor:
    """Writes batches for one consumer of the group."""

    def __init__(
        self,
        settings: Settings,
        consumer: str,
        redis: aioredis.Redis,
        sink: ClickHouseSink,
        dead: DeadLetters,
    ) -> None:
        self._settings = settings
        self.consumer = consumer
        self._redis = redis
        self._sink = sink
        self._dead = dead
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop retrying: a batch that cannot be written now stays pending for redelivery."""
        self._stopping.set()

    async def process(
        self, ids: Sequence[bytes], entries: Sequence[dict[bytes, bytes]], redelivered: bool = False
    ) -> None:
        """Write what is new in the batch, dead-letter what cannot be written, then XACK."""
        items: list[Item] = []
        letters: list[DeadLetter] = []
        for entry_id, fields in zip(ids, entries, strict=True):
            if _is_ours(fields):
                items.append(Item(entry_id, fields))
            else:
                letters.append(DeadLetter(entry_id, fields, "not a hitstream event entry", 1))
        if redelivered and items:
            items, exhausted = await self._split_exhausted(items)
            letters += exhausted
        fresh = await self._without_stored(items, check_all=redelivered)
        letters += await self._write(fresh)
        await self._dead.bury(letters)
        buried = {letter.source_id for letter in letters}
        done = [i for i in ids if i not in buried]
        if done:
            await self._redis.xack(self._settings.stream, self._settings.group, *done)

    async def _split_exhausted(self, items: list[Item]) -> tuple[list[Item], list[DeadLetter]]:
        """Entries delivered more than `max_deliveries` times (crash loops) are given up."""
        counts = await self._delivery_counts([item.entry_id for item in items])
        limit = self._settings.max_deliveries
        keep = [item for item in items if counts.get(item.entry_id, 1) <= limit]
        dead = [
            DeadLetter(
                item.entry_id,
                item.fields,
                f"delivered {counts[item.entry_id]} times without being written",
                counts[item.entry_id],
            )
            for item in items
            if counts.get(item.entry_id, 1) > limit
        ]
        return keep, dead

    async def _without_stored(self, items: list[Item], check_all: bool) -> list[Item]:
        """Drop rows whose event_id is already in ClickHouse (or earlier in this batch)."""
        checked = [item for item in items if check_all or item.client_id]
        if not checked:
            return items
        sites, event_ids = set(), set()
        for item in checked:
            with contextlib.suppress(ValueError, KeyError):
                row = orjson.loads(item.row)
                sites.add(row["site_id"])
                event_ids.add(_valid_uuid(item.event_id))
        stored = await self._with_backoff(items, lambda: self._sink.existing(sites, event_ids))
        seen: set[str] = set()
        fresh = []
        checked_ids = {item.entry_id for item in checked}
        for item in items:
            if item.entry_id in checked_ids:
                if item.event_id in stored or item.event_id in seen:
                    continue
                seen.add(item.event_id)
            fresh.append(item)
        if len(fresh) < len(items):
            log.info("skipped %d events already stored", len(items) - len(fresh))
        return fresh

    async def _write(self, items: list[Item]) -> list[DeadLetter]:
        """Insert; on rejected rows, bisect until each bad row is alone, then retry it."""
        if not items:
            return []
        token = batch_token(self._settings.stream, [item.entry_id for item in items])
        rows = [item.row for item in items]
        try:
            self._failpoint("kill-before-insert")
            await self._with_backoff(items, lambda: self._sink.insert(rows, token))
            self._failpoint("kill-after-insert")
            return []
        except RowsRejected as exc:
            if len(items) == 1:
                return await self._retry_rejected(items[0], exc)
        middle = len(items) // 2
        return await self._write(items[:middle]) + await self._write(items[middle:])

    def _failpoint(self, name: str) -> None:
        if self._settings.failpoint == name:
            log.warning("failpoint %s: killing this process", name)
            os.kill(os.getpid(), signal.SIGKILL)

    async def _retry_rejected(self, item: Item, error: RowsRejected) -> list[DeadLetter]:
        """A single rejected row gets `max_deliveries` attempts in all, then the dead letters."""
        token = batch_token(self._settings.stream, [item.entry_id])
        delay = self._settings.insert_backoff_initial_s
        for _ in range(self._settings.max_deliveries - 1):
            await self._pause(delay)
            delay = min(delay * 2, self._settings.insert_backoff_max_s)
            try:
                await self._with_backoff([item], lambda: self._sink.insert([item.row], token))
                return []
            except RowsRejected as exc:
                error = exc
        counts = await self._delivery_counts([item.entry_id])
        log.error("dead-lettering entry %s: %s", item.entry_id.decode(), error)
        message = f"{error} (after {self._settings.max_deliveries} attempts)"
        return [DeadLetter(item.entry_id, item.fields, message, counts.get(item.entry_id, 1))]

    async def _with_backoff(self, items: Sequence[Item], call: Callable[[], T]) -> T:
        """Run a blocking sink call until it succeeds; RowsRejected and shutdown end it."""
        delay = self._settings.insert_backoff_initial_s
        touched = time.monotonic()
        while True:
            try:
                return await to_thread.run_sync(call)
            except RowsRejected:
                raise
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
                self._settings.stream,
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
            self._settings.stream,
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


def stream_id_key(entry_id: bytes) -> tuple[int, int]:
    """Stream IDs ("ms-seq") in their numeric order."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


def _is_ours(fields: dict[bytes, bytes]) -> bool:
    row = fields.get(ROW_FIELD, b"")
    return row.startswith(ROW_PREFIX) and row[_ID_END : _ID_END + 2] == b'",'


def _valid_uuid(text: str) -> str:
    parts = text.split("-")
    if [len(p) for p in parts] != [8, 4, 4, 4, 12]:
        raise ValueError(text)
    int("".join(parts), 16)
    return text

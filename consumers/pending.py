"""One consumer's pending entries on one shard: delivery counts, keeping them, reading them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from consumers.queue import stream_id_key
from foundation.clients import RedisClient
from foundation.settings import Settings
from schemas.entry import Entry, decode

log = logging.getLogger(__name__)


class PendingEntries:
    """The entries of `stream` delivered to `consumer` in the group and not yet acknowledged."""

    def __init__(self, settings: Settings, redis: RedisClient, stream: str, consumer: str) -> None:
        self._settings = settings
        self._redis = redis
        self._stream = stream
        self.consumer = consumer

    async def delivery_counts(self, ids: list[bytes]) -> dict[bytes, int]:
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

    async def keep_claim(self, ids: list[bytes]) -> None:
        """Reset the idle time of entries still ours, so no live consumer reclaims them."""
        mine = list(await self.delivery_counts(ids))
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

    async def fetch(self, ids: list[bytes]) -> dict[bytes, Entry]:
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

    def lease(self, ids: list[bytes], clock: Callable[[], float] = time.monotonic) -> Lease:
        """A lease on `ids` for work that may take longer than `claim_idle_ms`."""
        return Lease(self, ids, self._settings.claim_idle_ms / 3000, clock)


class Lease:
    """Keeps a batch's entries claimed while its work is retried: renewed once a third of
    `claim_idle_ms` has passed since it was taken or last renewed."""

    def __init__(
        self,
        pending: PendingEntries,
        ids: list[bytes],
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pending = pending
        self._ids = ids
        self._every_s = every_s
        self._clock = clock
        self._renewed = clock()

    def due(self) -> bool:
        return self._clock() - self._renewed > self._every_s

    async def renew_if_due(self) -> None:
        """Claim the entries again if the last claim is getting old."""
        if self.due():
            await self._pending.keep_claim(self._ids)
            self._renewed = self._clock()

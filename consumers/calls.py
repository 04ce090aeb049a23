"""ClickHouse calls made for a batch: in the consumer's threads, retried while it is away."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from anyio import CapacityLimiter, to_thread

from consumers.pending import PendingEntries
from consumers.retries import RetryPolicy
from schemas.entry import Entry

T = TypeVar("T")


class SinkCalls:
    """Runs blocking sink calls under `policy` (retried on SinkUnavailable until shutdown),
    keeping the batch's entries claimed while it waits."""

    def __init__(
        self, policy: RetryPolicy, pending: PendingEntries, threads: CapacityLimiter
    ) -> None:
        self._policy = policy
        self._pending = pending
        # Threads of their own for the engine calls (shared by a consumer's shards): a
        # pool filled by queries (or anything else) never holds up a write.
        self._threads = threads

    async def __call__(self, items: Sequence[Entry], call: Callable[[], T]) -> T:
        """`call()` in an engine thread until it succeeds; RowsRejected and shutdown end it."""
        lease = self._pending.lease([item.entry_id for item in items])

        async def attempt() -> T:
            await lease.renew_if_due()
            return await to_thread.run_sync(call, limiter=self._threads)

        return await self._policy.call(attempt)

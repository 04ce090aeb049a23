"""Group commit: concurrent requests' round trips to Redis made as one call.

Items submitted while a call is in flight (and those of the same loop iteration) go
together in the next call; each submitter gets its own item's result, or the call's
failure. Under load a call carries many requests' work, so the round trips (and
Redis's and the client's per-command cost) grow with the load's concurrency, not its
rate; alone, a request waits for no one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Runs one call for the items, returning one result per item, in order.
Run = Callable[[Sequence[T]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[T, R]):
    """Calls `run` for the items waiting, one call at a time, until none wait."""

    def __init__(self, run: Run[T, R], failure: Callable[[Exception], Exception | None]) -> None:
        self._run = run
        # What a caller raises for the call's exception (None: the exception itself).
        self._failure = failure
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Wait for `item`'s result, from a call it shares with the others waiting."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit())
        return await done

    async def _commit(self) -> None:
        await asyncio.sleep(0)  # let requests of this loop iteration join
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                results = await self._run([item for item, _ in group])
            except Exception as exc:  # every waiter is answered, whatever the failure
                failure = self._failure(exc) or exc
                for _, done in group:
                    if not done.done():  # the client may have gone away
                        done.set_exception(failure)
                continue
            for (_, done), result in zip(group, results, strict=True):
                if not done.done():
                    done.set_result(result)

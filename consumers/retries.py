"""The consumers' one retry policy: doubling delays, a cap, and no retry once shutdown begins.

Shaped as getsentry/arroyo's `RetryPolicy`: a small object whose `call()` runs an
attempt until it succeeds, instead of a backoff loop written into each caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from foundation.errors import Stopping
from foundation.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

Sleep = Callable[[asyncio.Event, float], Awaitable[None]]


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, but wake at once when `stopping` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Runs an attempt again after `retry_on` errors, waiting `initial_s`, then twice as
    long each time up to `max_s`; `attempts` in all (None: until it succeeds).

    Once `stopping` is set, a retryable failure or the end of a wait raises `Stopping`:
    the work stays pending for redelivery. Out of attempts, the last error is raised.
    """

    initial_s: float
    max_s: float
    retry_on: tuple[type[Exception], ...]
    stopping: asyncio.Event
    attempts: int | None = None
    # Logged at each retry with the error and the delay (None: retries are not logged).
    what: str | None = None
    sleep: Sleep = field(default=pause, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        retry_on: tuple[type[Exception], ...],
        stopping: asyncio.Event,
        attempts: int | None = None,
        what: str | None = None,
    ) -> RetryPolicy:
        """The consumers' backoff (`insert_backoff_initial_s` doubling to `_max_s`)."""
        return cls(
            settings.insert_backoff_initial_s,
            settings.insert_backoff_max_s,
            retry_on,
            stopping,
            attempts,
            what,
        )

    def delays(self) -> Iterator[float]:
        """The waits before the second attempt, the third, and so on."""
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_s)

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Await `attempt()` until it returns, retrying as the policy says."""
        delays = self.delays()
        tried = 0
        while True:
            tried += 1
            try:
                return await attempt()
            except self.retry_on as exc:
                if self.attempts is not None and tried >= self.attempts:
                    raise
                if self.stopping.is_set():
                    raise Stopping(str(exc)) from exc
                delay = next(delays)
                if self.what is not None:
                    log.warning("%s (%s); retrying in %.1fs", self.what, exc, delay)
            await self.sleep(self.stopping, delay)
            if self.stopping.is_set():
                raise Stopping("shutting down")

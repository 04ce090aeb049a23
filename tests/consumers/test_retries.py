"""The consumers' retry policy alone: delays, attempts, and shutdown, with a fake sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from consumers.retries import RetryPolicy, pause
from foundation.errors import RowsRejected, SinkUnavailable, Stopping
from foundation.settings import Settings


class Flaky:
    """An attempt that fails with `error` `failures` times, then returns `value`."""

    def __init__(self, failures: int, error: Exception, value: str = "done") -> None:
        self.failures, self.error, self.value, self.calls = failures, error, value, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.value


def policy(
    slept: list[float], stopping: asyncio.Event | None = None, **options: Any
) -> RetryPolicy:
    """A policy whose sleep only records the delay (and may run `on_sleep`)."""
    on_sleep: Callable[[], None] | None = options.pop("on_sleep", None)

    async def sleep(_: asyncio.Event, seconds: float) -> None:
        slept.append(seconds)
        if on_sleep is not None:
            on_sleep()

    options.setdefault("retry_on", (SinkUnavailable,))
    return RetryPolicy(0.1, 1.0, stopping=stopping or asyncio.Event(), sleep=sleep, **options)


def test_delays_double_up_to_the_cap() -> None:
    delays = policy([]).delays()
    assert [next(delays) for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_a_first_success_does_not_sleep() -> None:
    slept: list[float] = []
    assert asyncio.run(policy(slept).call(Flaky(0, SinkUnavailable("x")))) == "done"
    assert slept == []


def test_retries_until_success_without_a_limit() -> None:
    slept: list[float] = []
    attempt = Flaky(6, SinkUnavailable("away"))
    assert asyncio.run(policy(slept).call(attempt)) == "done"
    assert attempt.calls == 7
    assert slept == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_retries_are_logged_when_named(caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(policy([], what="ClickHouse unavailable").call(Flaky(1, SinkUnavailable("gone"))))
    assert "ClickHouse unavailable (gone); retrying in 0.1s" in caplog.text


def test_other_errors_are_not_retried() -> None:
    slept: list[float] = []
    attempt = Flaky(1, RowsRejected("bad row"))
    with pytest.raises(RowsRejected):
        asyncio.run(policy(slept).call(attempt))
    assert attempt.calls == 1 and slept == []


def test_out_of_attempts_the_last_error_is_raised() -> None:
    slept: list[float] = []
    attempt = Flaky(9, RowsRejected("bad row"))
    with pytest.raises(RowsRejected, match="bad row"):
        asyncio.run(policy(slept, retry_on=(RowsRejected,), attempts=3).call(attempt))
    assert attempt.calls == 3 and slept == [0.1, 0.2]


def test_one_attempt_never_sleeps() -> None:
    slept: list[float] = []
    with pytest.raises(RowsRejected):
        asyncio.run(
            policy(slept, retry_on=(RowsRejected,), attempts=1).call(Flaky(1, RowsRejected("x")))
        )
    assert slept == []


def test_a_failure_once_stopping_raises_stopping() -> None:
    stopping = asyncio.Event()
    stopping.set()
    slept: list[float] = []
    with pytest.raises(Stopping, match="away") as raised:
        asyncio.run(policy(slept, stopping).call(Flaky(1, SinkUnavailable("away"))))
    assert isinstance(raised.value.__cause__, SinkUnavailable)
    assert slept == []


def test_stopping_during_the_wait_ends_the_retries() -> None:
    stopping = asyncio.Event()
    slept: list[float] = []
    attempt = Flaky(5, SinkUnavailable("away"))
    with pytest.raises(Stopping, match="shutting down"):
        asyncio.run(policy(slept, stopping, on_sleep=stopping.set).call(attempt))
    assert attempt.calls == 1 and slept == [0.1]


def test_out_of_attempts_wins_over_stopping() -> None:
    """The last attempt's error is the caller's to handle (a dead letter), stopping or not."""
    stopping = asyncio.Event()
    stopping.set()
    with pytest.raises(RowsRejected):
        asyncio.run(
            policy([], stopping, retry_on=(RowsRejected,), attempts=1).call(
                Flaky(1, RowsRejected("x"))
            )
        )


def test_from_settings_takes_the_insert_backoff() -> None:
    settings = Settings(insert_backoff_initial_s=0.5, insert_backoff_max_s=3.0)
    made = RetryPolicy.from_settings(settings, (SinkUnavailable,), asyncio.Event(), attempts=4)
    delays = made.delays()
    assert [next(delays) for _ in range(4)] == [0.5, 1.0, 2.0, 3.0]
    assert made.attempts == 4 and made.sleep is pause


def test_pause_wakes_at_once_when_stopping() -> None:
    async def main() -> float:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_soon(stopping.set)
        await pause(stopping, 30.0)
        return loop.time() - started

    assert asyncio.run(main()) < 5.0

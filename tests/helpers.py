"""Helpers shared by the tests: polling with a deadline, event builders, free ports."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    attempt: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call `attempt` until it returns something other than None; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = attempt()
        except AssertionError as exc:
            result, last = None, exc
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last}")
        time.sleep(interval)


def event(site_id: str, path: str = "/", **fields: Any) -> dict[str, Any]:
    """A valid page-view event with overridable fields."""
    return {"site_id": site_id, "event_type": "page_view", "path": path, **fields}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

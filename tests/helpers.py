"""Helpers shared by the tests: event builders, plus the process helpers in hitstream.testing."""

from __future__ import annotations

from typing import Any

from hitstream.testing import HitstreamProcess, free_port, wait_for

__all__ = ["HitstreamProcess", "event", "free_port", "wait_for"]


def event(site_id: str, path: str = "/", **fields: Any) -> dict[str, Any]:
    """A valid page-view event with overridable fields."""
    return {"site_id": site_id, "event_type": "page_view", "path": path, **fields}

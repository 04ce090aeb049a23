"""Fixtures of the consumer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from consumers.worker import ensure_group
from foundation.settings import Settings
from hitstream.connections import redis_client


@pytest.fixture
async def aredis(settings: Settings) -> AsyncIterator[Any]:
    """An asyncio client of the test's Valkey, with the test's group on shard 0."""
    conn = redis_client(settings.redis_url or "")
    await ensure_group(conn, settings.keys.shard(0).stream, settings.group)
    yield conn
    await conn.aclose()

"""Appending validated events to the Redis Stream: the only write ingest does."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hitstream.errors import StreamUnavailable

# The field holding the event's JSONEachRow line in each stream entry.
ROW_FIELD = b"e"


class StreamWriter:
    """Appends encoded events to one stream; a batch is appended atomically (MULTI/EXEC)."""

    def __init__(self, redis: aioredis.Redis, stream: str) -> None:
        self._redis = redis
        self._stream = stream

    async def append(self, row: bytes) -> None:
        """Store one event; returns only once Redis has it."""
        try:
            await self._redis.xadd(self._stream, {ROW_FIELD: row})
        except RedisError as exc:
            raise StreamUnavailable(str(exc)) from exc

    async def append_many(self, rows: Sequence[bytes]) -> None:
        """Store all events or none of them."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for row in rows:
                    pipe.xadd(self._stream, {ROW_FIELD: row})
                await pipe.execute()
        except RedisError as exc:
            raise StreamUnavailable(str(exc)) from exc

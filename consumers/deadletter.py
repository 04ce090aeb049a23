"""A shard's dead-letter stream: its entries that failed `max_deliveries` times, with why."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from foundation.clients import RedisClient, RedisPipeline
from foundation.keys import ShardKeys
from schemas.entry import ROW_FIELD

# What add() puts beside an entry's own fields; replay() strips them again.
METADATA_FIELDS = frozenset({b"source_id", b"error", b"deliveries", b"failed_at_ms"})


@dataclass(frozen=True)
class DeadLetter:
    """One failed entry: where it came from, its row, the error and delivery count."""

    source_id: bytes
    fields: dict[bytes, bytes]
    error: str
    deliveries: int


class DeadLetters:
    """Moves entries to the dead-letter stream, lists them, and re-injects them."""

    def __init__(self, redis: RedisClient, shard: ShardKeys) -> None:
        self._redis = redis
        self._stream = shard.stream
        self._dead = shard.dead_letters

    def add(self, pipe: RedisPipeline, letters: Sequence[DeadLetter]) -> None:
        """Queue each letter's append to the dead-letter stream in the caller's transaction.

        The caller acknowledges their source entries in the same transaction.
        """
        for letter in letters:
            fields: dict[Any, Any] = dict(letter.fields)
            pipe.xadd(
                self._dead,
                {
                    **fields,
                    b"source_id": letter.source_id,
                    b"error": letter.error.encode(),
                    b"deliveries": str(letter.deliveries).encode(),
                    b"failed_at_ms": str(int(time.time() * 1000)).encode(),
                },
            )

    async def list(self, count: int = 100) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """The oldest `count` dead letters with their fields."""
        entries: Any = await self._redis.xrange(self._dead, count=count)
        return list(entries)

    async def count(self) -> int:
        """How many entries the dead-letter stream holds."""
        return int(await self._redis.xlen(self._dead))

    async def replay(self, ids: Sequence[bytes] = ()) -> int:
        """Re-append dead letters (all, or those with `ids`) to the main stream; remove them."""
        entries: Any = []
        if ids:
            for entry_id in ids:
                entries += await self._redis.xrange(self._dead, entry_id, entry_id)
        else:
            entries = await self._redis.xrange(self._dead)
        if not entries:
            return 0
        async with self._redis.pipeline(transaction=True) as pipe:
            for entry_id, fields in entries:
                original = {k: v for k, v in fields.items() if k not in METADATA_FIELDS}
                pipe.xadd(self._stream, original or {ROW_FIELD: b""})
                pipe.xdel(self._dead, entry_id)
            await pipe.execute()
        return len(entries)

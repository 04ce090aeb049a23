"""Insert plans: which stream entries go into which insert, recorded before the insert.

One INSERT into `events` writes several parts one after the other (the raw rows, then
each materialized view's), so a process killed in the middle leaves some tables with
the batch and others without it. Replaying the same insert with the same
`insert_deduplication_token` completes it: ClickHouse skips the parts it already has
and writes the missing ones (checked on chdb in tests/consumers/test_plans.py). That
needs the replay to be cut exactly as the first attempt was, whoever redelivers it
and however its entries come back; so each insert's entry IDs are recorded here
first, under its token, and deleted in the same transaction as their XACK.

Recorded plans always partition the in-flight entries: when an insert is rejected and
bisected, its plan is replaced by its halves' in one step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from foundation.clients import RedisClient, RedisPipeline

SEPARATOR = b","


@dataclass(frozen=True)
class Plan:
    """One insert: its deduplication token and its entries, in insert order."""

    token: str
    ids: tuple[bytes, ...]


class Plans:
    """The in-flight plans of one consumer group, in one Redis hash (RedisKeys.plans)."""

    def __init__(self, redis: RedisClient, key: str) -> None:
        self._redis = redis
        self.key = key

    async def record(self, plan: Plan) -> None:
        """Remember `plan` before its insert is sent."""
        await self._redis.hset(self.key, plan.token, SEPARATOR.join(plan.ids))

    async def split(self, parent: Plan, halves: Sequence[Plan]) -> None:
        """A rejected insert (nothing written) becomes its halves, atomically."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.key, parent.token)
            for half in halves:
                pipe.hset(self.key, half.token, SEPARATOR.join(half.ids))
            await pipe.execute()

    async def touching(self, ids: Iterable[bytes]) -> list[Plan]:
        """Recorded plans that include any of `ids` (read only on redelivery)."""
        wanted = set(ids)
        raw: dict[Any, Any] = await self._redis.hgetall(self.key)
        found = []
        for token, packed in raw.items():
            plan_ids = tuple(packed.split(SEPARATOR)) if packed else ()
            if wanted.intersection(plan_ids):
                found.append(Plan(token.decode(), plan_ids))
        return found

    def forget(self, pipe: RedisPipeline, tokens: Sequence[str]) -> None:
        """Queue the deletion of done plans in the transaction that acknowledges them."""
        if tokens:
            pipe.hdel(self.key, *tokens)

"""Which stream shards a deployment has: the count each process ran with, remembered in
Redis, so a changed HITSTREAM_STREAM_SHARDS leaves no shard unread.

Every process records its count at start (ingest's decides where events go). Consumers
read the shards of their own count (or their HITSTREAM_SHARDS subset) and also every
shard past it that some process ever wrote to (a shrunk count's retired shards), plus
the untagged stream of a single-server deployment upgraded from before shards; they
look again at every maintenance round, so a grown count's new shards are read without
a restart.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from foundation.clients import RedisClient
from foundation.keys import RedisKeys, ShardKeys


async def record(redis: RedisClient, keys: RedisKeys) -> None:
    """Remember that a process of this deployment runs with `keys.shards` shards."""
    await redis.sadd(keys.shard_counts, keys.shards)


async def shards_to_read(
    redis: RedisClient, keys: RedisKeys, chosen: frozenset[int] | None = None
) -> list[ShardKeys]:
    """The shards a consumer reads: `chosen` (None: all of its count), every retired
    shard, and on a single server the legacy stream while it exists."""
    counts: Any = await redis.smembers(keys.shard_counts)
    highest = max([keys.shards, *(int(count) for count in counts)])
    own = range(keys.shards) if chosen is None else sorted(k for k in chosen if k < keys.shards)
    shards = [keys.shard(k) for k in [*own, *range(keys.shards, highest)]]
    if not isinstance(redis, RedisCluster) and await redis.exists(keys.legacy.stream):
        shards.append(keys.legacy)
    return shards


async def adopt_legacy_keys(redis: RedisClient, keys: RedisKeys) -> int:
    """On one server, give the salts and dashboard sessions a release before shards left
    their names of now (RENAMENX: a key already made under the new name wins), so an
    upgrade neither counts the day's visitors twice nor logs everyone out; return how
    many. The cache is rebuilt from ClickHouse; dedup sets and visits expire within the
    hour."""
    adopted = 0
    for kind in keys.LEGACY_KINDS:
        async for name in redis.scan_iter(match=keys.legacy_pattern(kind), count=1000):
            old = name.decode() if isinstance(name, bytes) else str(name)
            adopted += int(await redis.renamenx(old, keys.from_legacy(old)))
    return adopted

"""The engine clients the rooms are handed (opened by the composition root), and closing one."""

from __future__ import annotations

import contextlib
from typing import TypeAlias

import redis.asyncio as aioredis
from clickhouse_connect.driver.client import Client
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster

# A single Redis server's client or a Redis Cluster's: every room takes either.
RedisClient: TypeAlias = aioredis.Redis | RedisCluster
RedisPipeline: TypeAlias = Pipeline | ClusterPipeline


def close_quietly(client: Client) -> None:
    """Close a ClickHouse client at shutdown without masking the real exit reason."""
    with contextlib.suppress(Exception):
        client.close()

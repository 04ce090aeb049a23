"""The stream as the consumer group sees it: length, pending, lag, dead letters.

Served at GET /health/queue and read by the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hitstream.health import CHECK_TIMEOUT_S
from hitstream.http import JSONResponse, api_routes, unavailable
from hitstream.metrics import Metrics, Refresh
from hitstream.settings import Settings
from sites.access import AccessState, require_admin

log = logging.getLogger(__name__)


class QueueState(AccessState):
    """What /health/queue reads from the app's lifespan state."""

    redis: aioredis.Redis


def stream_id_key(entry_id: bytes) -> tuple[int, int]:
    """Stream IDs ("ms-seq") in their numeric order."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


async def queue_state(redis: aioredis.Redis, settings: Settings) -> dict[str, Any]:
    """Stream length, the group's pending count, lag and oldest pending age, dead letters."""
    stream, group = settings.keys.stream, settings.group
    length = int(await redis.xlen(stream))
    groups: Any = await redis.xinfo_groups(stream) if length or await redis.exists(stream) else []
    mine = next((g for g in groups if g["name"].decode() == group), None)
    pending, oldest_age, consumers = 0, 0.0, 0
    lag: int | None = length
    if mine is not None:
        summary: Any = await redis.xpending(stream, group)
        pending, consumers, lag = int(summary["pending"]), int(mine["consumers"]), mine["lag"]
        if pending:
            oldest_ms, _ = stream_id_key(summary["min"])
            oldest_age = max(0.0, time.time() - oldest_ms / 1000)
    return {
        "stream": stream,
        "length": length,
        "group": group,
        "consumers": consumers,
        "pending": pending,
        "lag": lag,
        "oldest_pending_age_s": round(oldest_age, 3),
        "dead_letters": int(await redis.xlen(settings.keys.dead_letters)),
    }


def refresher(redis: aioredis.Redis, settings: Settings, metrics: Metrics) -> Refresh:
    """Set the stream's gauges from a fresh reading, at each scrape of /metrics."""

    async def refresh() -> None:
        try:
            state = await asyncio.wait_for(queue_state(redis, settings), CHECK_TIMEOUT_S)
        except (RedisError, TimeoutError) as exc:
            log.warning("queue state unavailable for /metrics: %s", exc)
            return
        metrics.stream_length.set(state["length"])
        metrics.consumer_lag.set(state["lag"] or 0)
        metrics.pending.set(state["pending"])
        metrics.oldest_pending.set(state["oldest_pending_age_s"])
        metrics.dead_letters.set(state["dead_letters"])

    return refresh


async def get_queue_health(request: Request[QueueState]) -> Response:
    """The stream as the consumer group sees it; 503 when Redis does not answer.

    With HITSTREAM_INGEST_AUTH=key it is operators' information: admin token only.
    """
    settings = request.state["settings"]
    if settings.ingest_auth == "key":
        require_admin(request)
    try:
        body = await asyncio.wait_for(
            queue_state(request.state["redis"], settings), timeout=CHECK_TIMEOUT_S
        )
    except (RedisError, TimeoutError) as exc:
        log.warning("queue state unavailable: %s", exc)
        raise unavailable("redis unavailable, retry later", "redis") from exc
    return JSONResponse(body)


def routes() -> list[BaseRoute]:
    """The queue route, also under `/api`."""
    return api_routes("GET", [("/health/queue", get_queue_health)])

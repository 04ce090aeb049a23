"""GET /health: 200 when every engine this process uses answers and every role it runs
can do its work (ingest can append, the consumer is reading), 503 otherwise."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from anyio import to_thread
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from consumers.processor import stream_id_key
from hitstream.access import require_admin
from hitstream.http import RETRY_AFTER_S, JSONResponse, api_routes, unavailable
from hitstream.settings import Settings

CHECK_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]


async def _run(check: Check) -> str:
    try:
        ok = await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
    except Exception:
        ok = False
    return "ok" if ok else "unavailable"


def blocking_check(ping: Callable[[], bool]) -> Check:
    """Wrap a blocking ping (the ClickHouse client) so it runs in a worker thread."""

    async def check() -> bool:
        return await to_thread.run_sync(ping, abandon_on_cancel=True)

    return check


ROLE_CHECKS = frozenset({"ingest", "consumer"})


async def get_health(request: Request) -> Response:
    """Report each engine's and role's state; 503 (with Retry-After) if any is not ok."""
    checks: dict[str, Check] = request.state.health_checks
    names = list(checks)
    results = dict(zip(names, await asyncio.gather(*(_run(checks[n]) for n in names)), strict=True))
    healthy = all(state == "ok" for state in results.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "engines": {n: r for n, r in results.items() if n not in ROLE_CHECKS},
        "roles": {n: r for n, r in results.items() if n in ROLE_CHECKS},
    }
    headers = {} if healthy else {"Retry-After": RETRY_AFTER_S}
    return JSONResponse(body, status_code=200 if healthy else 503, headers=headers)


async def queue_state(redis: aioredis.Redis, settings: Settings) -> dict[str, Any]:
    """Stream length, the group's pending count, lag and oldest pending age, dead letters."""
    stream, group = settings.stream, settings.group
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
        "dead_letters": int(await redis.xlen(settings.dead_letter_stream)),
    }


async def get_queue_health(request: Request) -> Response:
    """The stream as the consumer group sees it; 503 when Redis does not answer.

    With HITSTREAM_INGEST_AUTH=key it is operators' information: admin token only.
    """
    settings: Settings = request.state.settings
    if settings.ingest_auth == "key":
        require_admin(request)
    try:
        body = await asyncio.wait_for(
            queue_state(request.state.redis, request.state.settings), timeout=CHECK_TIMEOUT_S
        )
    except (RedisError, TimeoutError) as exc:
        log.warning("queue state unavailable: %s", exc)
        raise unavailable("redis unavailable, retry later", "redis") from exc
    return JSONResponse(body)


def routes() -> list[BaseRoute]:
    """Health routes, also under `/api`."""
    return api_routes("GET", [("/health", get_health), ("/health/queue", get_queue_health)])

"""The stream as the consumer group sees it: length, pending, lag, dead letters.

Served at GET /health/queue and read by the metrics; the dashboard's queue panel reads
GET /api/queue (with each consumer, the dead letters and the recent rates) and
replays dead letters with POST /api/queue/dead-letters/replay (admin only).
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
from starlette.routing import BaseRoute, Route

from consumers.deadletter import DeadLetters
from hitstream.health import CHECK_TIMEOUT_S
from hitstream.http import JSONResponse, api_routes, read_model, unavailable
from hitstream.metrics import Metrics, Refresh
from hitstream.settings import Settings
from schemas.entry import ROW_FIELD
from schemas.queue import ReplayRequest
from sites.access import AccessState, require_admin

log = logging.getLogger(__name__)

# The stream's counters are sampled this often, and kept this long, for the rates.
SAMPLE_INTERVAL_S = 10
SAMPLES_KEPT_S = 15 * 60
# Dead letters the panel lists (the oldest first).
DEAD_LETTERS_SHOWN = 100
# How much of a dead letter's row the panel shows.
ROW_PREVIEW_CHARS = 300


class QueueState(AccessState):
    """What /health/queue reads from the app's lifespan state."""

    redis: aioredis.Redis


def stream_id_key(entry_id: bytes) -> tuple[int, int]:
    """Stream IDs ("ms-seq") in their numeric order."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


async def _group(redis: aioredis.Redis, settings: Settings) -> dict[str, Any] | None:
    """XINFO GROUPS' entry for our group; None before the stream or the group exists."""
    if not await redis.exists(settings.keys.stream):
        return None
    groups: Any = await redis.xinfo_groups(settings.keys.stream)
    return next((g for g in groups if g["name"].decode() == settings.group), None)


async def queue_state(redis: aioredis.Redis, settings: Settings) -> dict[str, Any]:
    """Stream length, the group's pending count, lag and oldest pending age, dead letters."""
    stream, group = settings.keys.stream, settings.group
    length = int(await redis.xlen(stream))
    mine = await _group(redis, settings)
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
        await require_admin(request)
    try:
        body = await asyncio.wait_for(
            queue_state(request.state["redis"], settings), timeout=CHECK_TIMEOUT_S
        )
    except (RedisError, TimeoutError) as exc:
        log.warning("queue state unavailable: %s", exc)
        raise unavailable("redis unavailable, retry later", "redis") from exc
    return JSONResponse(body)


async def counters(redis: aioredis.Redis, settings: Settings) -> tuple[int, int] | None:
    """Entries ever added to the stream and ever drained by the group (delivered and
    acknowledged), or None before the stream or the group exists."""
    mine = await _group(redis, settings)
    if mine is None or mine.get("entries-read") is None:
        return None
    info: Any = await redis.xinfo_stream(settings.keys.stream)
    return int(info["entries-added"]), int(mine["entries-read"]) - int(mine["pending"])


async def sample_forever(redis: aioredis.Redis, settings: Settings) -> None:
    """Every SAMPLE_INTERVAL_S, record the counters once for the deployment (the first
    process to write an instant wins); run as a background task by every process."""
    while True:
        now = time.time()
        await asyncio.sleep(SAMPLE_INTERVAL_S - now % SAMPLE_INTERVAL_S)
        bucket = round(time.time() / SAMPLE_INTERVAL_S) * SAMPLE_INTERVAL_S
        try:
            read = await counters(redis, settings)
            if read is not None:
                value = f"{read[0]} {read[1]}"
                key = settings.keys.queue_sample(bucket)
                await redis.set(key, value, nx=True, ex=SAMPLES_KEPT_S)
        except RedisError as exc:
            log.warning("queue sample skipped: %s", exc)


async def rates(redis: aioredis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """Insert and drain rates (events/s) between consecutive samples of the last
    SAMPLES_KEPT_S; a gap (no process ran) is skipped, not averaged over."""
    last = int(time.time() // SAMPLE_INTERVAL_S) * SAMPLE_INTERVAL_S
    buckets = list(range(last - SAMPLES_KEPT_S, last + 1, SAMPLE_INTERVAL_S))
    values: Any = await redis.mget([settings.keys.queue_sample(b) for b in buckets])
    out: list[dict[str, Any]] = []
    previous: tuple[int, int, int] | None = None
    for bucket, value in zip(buckets, values, strict=True):
        if value is None:
            previous = None
            continue
        added, drained = map(int, value.split())
        if previous is not None:
            seconds = bucket - previous[0]
            out.append(
                {
                    "at": bucket,
                    "inserted_per_s": round(max(0, added - previous[1]) / seconds, 1),
                    "drained_per_s": round(max(0, drained - previous[2]) / seconds, 1),
                }
            )
        previous = (bucket, added, drained)
    return out


async def _consumers(redis: aioredis.Redis, settings: Settings) -> list[dict[str, Any]]:
    try:
        found: Any = await redis.xinfo_consumers(settings.keys.stream, settings.group)
    except RedisError:  # no stream or no group yet
        return []
    return [
        {
            "name": c["name"].decode(),
            "pending": int(c["pending"]),
            "idle_s": round(int(c["idle"]) / 1000, 1),
        }
        for c in found
    ]


def _letter(entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    row = fields.get(ROW_FIELD, b"").decode("utf-8", "replace")
    return {
        "id": entry_id.decode(),
        "error": fields.get(b"error", b"").decode("utf-8", "replace"),
        "deliveries": int(fields.get(b"deliveries", b"0") or 0),
        "failed_at_ms": int(fields.get(b"failed_at_ms", b"0") or 0),
        "row": row[:ROW_PREVIEW_CHARS] + ("..." if len(row) > ROW_PREVIEW_CHARS else ""),
    }


async def get_queue(request: Request[QueueState]) -> Response:
    """The queue panel's reading: the state, each consumer, the oldest dead letters and
    the rates of the last minutes (admin only, in every mode)."""
    await require_admin(request)
    redis, settings = request.state["redis"], request.state["settings"]
    try:
        state = await asyncio.wait_for(queue_state(redis, settings), CHECK_TIMEOUT_S)
        letters = await DeadLetters(redis, settings.keys).list(DEAD_LETTERS_SHOWN)
        body = {
            **state,
            "consumer_list": await _consumers(redis, settings),
            "dead_letter_list": [_letter(i, f) for i, f in letters],
            "rates": await rates(redis, settings),
            "sample_interval_s": SAMPLE_INTERVAL_S,
        }
    except (RedisError, TimeoutError) as exc:
        log.warning("queue state unavailable: %s", exc)
        raise unavailable("redis unavailable, retry later", "redis") from exc
    return JSONResponse(body)


async def replay_dead_letters(request: Request[QueueState]) -> Response:
    """Put dead letters back on the stream: `{"ids": [...]}` those, `{}` all of them."""
    await require_admin(request)
    settings = request.state["settings"]
    body = await read_model(
        request, ReplayRequest, settings.max_body_bytes, "invalid replay request"
    )
    letters = DeadLetters(request.state["redis"], settings.keys)
    replayed = await letters.replay([i.encode() for i in body.ids])
    return JSONResponse({"replayed": replayed, "dead_letters": await letters.count()})


def routes() -> list[BaseRoute]:
    """The queue route, also under `/api`, and the queue panel's two admin routes."""
    return [
        *api_routes("GET", [("/health/queue", get_queue_health)]),
        Route("/api/queue", get_queue, methods=["GET"]),
        Route("/api/queue/dead-letters/replay", replay_dead_letters, methods=["POST"]),
    ]

"""The stream as the consumer group sees it: length, pending, lag, dead letters.

Served at GET /health/queue and read by the metrics; the dashboard's queue panel reads
GET /api/queue (with each consumer, the dead letters and the recent rates) and
replays dead letters with POST /api/queue/dead-letters/replay (admin only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TypeAlias

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from consumers.deadletter import DeadLetters
from foundation import layout
from foundation.clients import RedisClient
from foundation.errors import REDIS_ERRORS
from foundation.health import CHECK_TIMEOUT_S
from foundation.http import JSONResponse, api_routes, read_model, unavailable
from foundation.keys import ShardKeys
from foundation.metrics import Metrics, Refresh
from foundation.settings import Settings
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

    redis: RedisClient


def stream_id_key(entry_id: bytes) -> tuple[int, int]:
    """Stream IDs ("ms-seq") in their numeric order."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


async def _group(redis: RedisClient, stream: str, group: str) -> dict[str, Any] | None:
    """XINFO GROUPS' entry for our group; None before the stream or the group exists."""
    if not await redis.exists(stream):
        return None
    groups: Any = await redis.xinfo_groups(stream)
    return next((g for g in groups if g["name"].decode() == group), None)


async def shard_state(redis: RedisClient, shard: ShardKeys, group: str) -> dict[str, Any]:
    """One shard's stream length, the group's pending count, lag and oldest pending age,
    and its dead letters."""
    length = int(await redis.xlen(shard.stream))
    mine = await _group(redis, shard.stream, group)
    pending, oldest_age, consumers = 0, 0.0, 0
    lag: int | None = length
    if mine is not None:
        summary: Any = await redis.xpending(shard.stream, group)
        pending, consumers, lag = int(summary["pending"]), int(mine["consumers"]), mine["lag"]
        if pending:
            oldest_ms, _ = stream_id_key(summary["min"])
            oldest_age = max(0.0, time.time() - oldest_ms / 1000)
    return {
        "shard": shard.name,
        "stream": shard.stream,
        "length": length,
        "consumers": consumers,
        "pending": pending,
        "lag": lag,
        "oldest_pending_age_s": round(oldest_age, 3),
        "dead_letters": int(await redis.xlen(shard.dead_letters)),
    }


async def queue_state(
    redis: RedisClient, settings: Settings, read: list[ShardKeys] | None = None
) -> dict[str, Any]:
    """The queue in sum over every shard (lengths, pending, lag and dead letters added,
    the oldest pending age and the most consumers of any shard), and each shard's own;
    `read`: the shards, when the caller has them."""
    read = read or await layout.shards_to_read(redis, settings.keys)
    shards = [await shard_state(redis, shard, settings.group) for shard in read]
    lags = [shard["lag"] for shard in shards]
    return {
        "group": settings.group,
        "length": sum(shard["length"] for shard in shards),
        "consumers": max(shard["consumers"] for shard in shards),
        "pending": sum(shard["pending"] for shard in shards),
        # Redis cannot tell a group's lag after some deletions: then neither can the sum.
        "lag": None if None in lags else sum(lags),
        "oldest_pending_age_s": max(shard["oldest_pending_age_s"] for shard in shards),
        "dead_letters": sum(shard["dead_letters"] for shard in shards),
        "shards": shards,
    }


def refresher(redis: RedisClient, settings: Settings, metrics: Metrics) -> Refresh:
    """Set the stream's gauges from a fresh reading, at each scrape of /metrics."""

    async def refresh() -> None:
        try:
            state = await asyncio.wait_for(queue_state(redis, settings), CHECK_TIMEOUT_S)
        except (*REDIS_ERRORS, TimeoutError) as exc:
            log.warning("queue state unavailable for /metrics: %s", exc)
            return
        metrics.stream_length.set(state["length"])
        metrics.consumer_lag.set(state["lag"] or 0)
        metrics.pending.set(state["pending"])
        metrics.oldest_pending.set(state["oldest_pending_age_s"])
        metrics.dead_letters.set(state["dead_letters"])
        for shard in state["shards"]:
            metrics.shard_length.labels(shard["shard"]).set(shard["length"])
            metrics.shard_lag.labels(shard["shard"]).set(shard["lag"] or 0)
            metrics.shard_pending.labels(shard["shard"]).set(shard["pending"])
            metrics.shard_dead_letters.labels(shard["shard"]).set(shard["dead_letters"])

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
    except (*REDIS_ERRORS, TimeoutError) as exc:
        log.warning("queue state unavailable: %s", exc)
        raise unavailable("redis unavailable, retry later", "redis") from exc
    return JSONResponse(body)


async def counters(redis: RedisClient, settings: Settings) -> tuple[int, int] | None:
    """Entries ever added to the stream shards and ever drained by the group (delivered
    and acknowledged), or None before any shard's stream or group exists."""
    added = drained = 0
    found = False
    for shard in await layout.shards_to_read(redis, settings.keys):
        mine = await _group(redis, shard.stream, settings.group)
        if mine is None or mine.get("entries-read") is None:
            continue
        info: Any = await redis.xinfo_stream(shard.stream)
        added += int(info["entries-added"])
        drained += int(mine["entries-read"]) - int(mine["pending"])
        found = True
    return (added, drained) if found else None


async def sample_forever(redis: RedisClient, settings: Settings) -> None:
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
        except REDIS_ERRORS as exc:
            log.warning("queue sample skipped: %s", exc)


async def rates(redis: RedisClient, settings: Settings) -> list[dict[str, Any]]:
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


async def _consumers(
    redis: RedisClient, settings: Settings, shards: list[ShardKeys]
) -> list[dict[str, Any]]:
    """Each consumer of the group, its pending entries and idle time over `shards`."""
    found: dict[str, dict[str, Any]] = {}
    for shard in shards:
        try:
            members: Any = await redis.xinfo_consumers(shard.stream, settings.group)
        except REDIS_ERRORS:  # no stream or no group yet
            continue
        for member in members:
            name = member["name"].decode()
            idle_s = round(int(member["idle"]) / 1000, 1)
            seen = found.setdefault(name, {"name": name, "pending": 0, "idle_s": idle_s})
            seen["pending"] += int(member["pending"])
            seen["idle_s"] = min(seen["idle_s"], idle_s)
    return list(found.values())


def _letter(shard: ShardKeys, entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    row = fields.get(ROW_FIELD, b"").decode("utf-8", "replace")
    return {
        "id": entry_id.decode(),
        "shard": shard.name,
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
        shards = await layout.shards_to_read(redis, settings.keys)
        state = await asyncio.wait_for(queue_state(redis, settings, shards), CHECK_TIMEOUT_S)
        body = {
            **state,
            "consumer_list": await _consumers(redis, settings, shards),
            "dead_letter_list": [
                _letter(*letter)
                for letter in await dead_letters(redis, settings, DEAD_LETTERS_SHOWN, shards)
            ],
            "rates": await rates(redis, settings),
            "sample_interval_s": SAMPLE_INTERVAL_S,
        }
    except (*REDIS_ERRORS, TimeoutError) as exc:
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
    redis = request.state["redis"]
    shards = await layout.shards_to_read(redis, settings.keys)
    replayed = await replay(redis, settings, body.ids, shards)
    left = sum([await DeadLetters(redis, shard).count() for shard in shards])
    return JSONResponse({"replayed": replayed, "dead_letters": left})


Letter: TypeAlias = tuple[ShardKeys, bytes, dict[bytes, bytes]]


async def dead_letters(
    redis: RedisClient, settings: Settings, count: int, read: list[ShardKeys] | None = None
) -> list[Letter]:
    """The oldest `count` dead letters of every shard (shard, entry ID, fields)."""
    found = []
    for shard in read or await layout.shards_to_read(redis, settings.keys):
        for entry_id, fields in await DeadLetters(redis, shard).list(count):
            found.append((shard, entry_id, fields))
    found.sort(key=lambda letter: stream_id_key(letter[1]))
    return found[:count]


async def replay(
    redis: RedisClient, settings: Settings, refs: list[str], read: list[ShardKeys] | None = None
) -> int:
    """Put dead letters back on their shard's stream: each `<shard>:<id>` from that
    shard, each bare `<id>` from any shard that has it; none named: all of them."""
    replayed = 0
    for shard in read or await layout.shards_to_read(redis, settings.keys):
        ids = [ref.rpartition(":")[2] for ref in refs if ref.rpartition(":")[0] in ("", shard.name)]
        if refs and not ids:
            continue
        replayed += await DeadLetters(redis, shard).replay([i.encode() for i in ids])
    return replayed


def routes() -> list[BaseRoute]:
    """The queue route, also under `/api`, and the queue panel's two admin routes."""
    return [
        *api_routes("GET", [("/health/queue", get_queue_health)]),
        Route("/api/queue", get_queue, methods=["GET"]),
        Route("/api/queue/dead-letters/replay", replay_dead_letters, methods=["POST"]),
    ]

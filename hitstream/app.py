"""The app factory: one Starlette app per role set, opening exactly the engines it needs."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from functools import partial
from typing import Any, TypedDict, cast

from anyio import to_thread
from clickhouse_connect.driver.client import Client
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import consumers.queue
import dashboard.routes
import ingest.routes
import ingest.tracker
import ingest.umami
import reporting.legacy_routes
import reporting.routes
import sites.routes
import sites.v1_routes
from consumers.sink import WRITER_SESSION, ClickHouseSink
from consumers.worker import Consumer
from foundation import health, layout
from foundation.clients import RedisClient, close_quietly
from foundation.direct import DirectRoutes
from foundation.errors import REDIS_ERRORS, ConfigError
from foundation.http import EXCEPTION_HANDLERS
from foundation.metrics import Metrics, RequestMetrics
from foundation.metrics import routes as metrics_routes
from foundation.settings import Settings
from hitstream import openapi
from hitstream.connections import EmbeddedValkey, clickhouse_client, open_redis, redact
from hitstream.datadir import secure_data_dir, write_private
from ingest import agents
from ingest.auth import FailedAttempts
from ingest.places import Places, open_places
from ingest.ratelimit import RateLimiter
from ingest.stream import StreamWriter
from ingest.visitors import DailySalts, erase_expired_salts
from reporting.exportlimits import ExportLimits
from reporting.queries import STREAM_TIME_FACTOR, Readers, engine_settings, kill_queries
from schemas.cluster import WRITER_SETTINGS as CLUSTER_WRITER
from schemas.migrate import migrate
from sites.access import Attempts, require_metrics_reader
from sites.cache import SiteCache
from sites.registry import Registry
from sites.sessions import Sessions
from sites.store import SiteStore

log = logging.getLogger(__name__)


class Role(enum.Enum):
    """What a process does; `serve` is all three in one process."""

    INGEST = "ingest"
    REPORT = "report"
    CONSUME = "consume"


ALL_ROLES = frozenset(Role)


class AppState(TypedDict, total=False):
    """The services the lifespan opens, handed to every request (Starlette's lifespan
    state). Each room's routes declare the part they read (IngestState, ReportingState,
    AdminState, QueueState, HealthState); a role set provides the parts of its routes."""

    settings: Settings
    admin_token: str | None
    redis: RedisClient
    site_cache: SiteCache
    sessions: Sessions
    rate_limiter: RateLimiter
    auth_attempts: Attempts
    salts: DailySalts
    engine_checks: dict[str, health.Check]
    role_checks: dict[str, health.Check]
    metrics: Metrics
    writer: StreamWriter
    places: Places | None
    registry: Registry
    stats_readers: Readers
    stream_readers: Readers
    export_client: Callable[[], Client]
    export_limits: ExportLimits


ADMIN_TOKEN_FILE = "admin_token"
# ClickHouse clients serving GET /stats concurrently (each runs one query at a time).
# Measured on the 10M-event bench data at 4 concurrent clients: 1 reader 144 req/s,
# 2 readers 216, 4 readers 247 (chdb runs queries of separate handles in parallel).
STATS_READERS = 4
# Clients for streamed answers (CSV), apart: a client that reads slowly holds one of these.
STREAM_READERS = 2

# Stopping a background task: cancelled up to this many times, waiting this long each.
BACKGROUND_STOP_TRIES = 5
BACKGROUND_STOP_WAIT_S = 1.0

# How stale ingest's view of the stream length (for backpressure) may be.
BACKLOG_REFRESH_S = 0.25


def create_app(settings: Settings, roles: Iterable[Role] = ALL_ROLES) -> Starlette:
    """Build the app for `roles`; its lifespan opens engines, migrates and starts consumers."""
    wanted = frozenset(roles)
    # Starlette tries routes in order: the ingest routes, the hot path, come first.
    routes: list[BaseRoute] = []
    hot: list[BaseRoute] = []
    if Role.INGEST in wanted:
        hot = ingest.routes.routes() + ingest.umami.routes()
        routes += hot + ingest.tracker.routes()
    if Role.REPORT in wanted:
        routes += reporting.routes.routes() + reporting.legacy_routes.routes()
        routes += sites.routes.routes() + sites.v1_routes.routes() + dashboard.routes.routes()
    routes += health.routes() + consumers.queue.routes() + metrics_routes(require_metrics_reader)

    routes += openapi.routes(routes, site_id_required=settings.ingest_auth == "open")
    metrics = Metrics(role_name(wanted))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        async with contextlib.AsyncExitStack() as stack:
            state = await _open(settings, wanted, stack, metrics)
            log.info("%s", _summary(settings, wanted))
            yield state

    middleware = [
        # The client's address from X-Forwarded-For, only from trusted proxies: in the
        # app (not uvicorn's option) so every way of running it applies the same rule.
        Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips),
        Middleware(RequestMetrics, metrics=metrics),
    ]
    # Single events, the hot path, skip Starlette's layers (foundation/direct.py).
    direct = [r for r in hot if isinstance(r, Route) and "POST" in (r.methods or ())]
    return _App(
        direct,
        routes=routes,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=middleware,
    )


class _App(Starlette):
    """Starlette with `direct` routes in front of its layers (foundation/direct.py), through
    the same middleware and exception handlers."""

    def __init__(self, direct: list[Route], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._direct = direct

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        wraps = [_wrap(cls, args, kwargs) for cls, args, kwargs in self.user_middleware]
        return DirectRoutes(stack, self._direct, self.exception_handlers, wraps)


def _wrap(cls: Any, args: Any, kwargs: Any) -> Callable[[ASGIApp], ASGIApp]:
    """A middleware as Starlette builds it: `cls(app, *args, **kwargs)`."""
    return lambda app: cast(ASGIApp, cls(app, *args, **kwargs))


def role_name(roles: frozenset[Role]) -> str:
    """`serve` for all roles, else the roles' names."""
    return "serve" if roles == ALL_ROLES else "+".join(sorted(r.value for r in roles))


def _summary(settings: Settings, roles: frozenset[Role]) -> str:
    """One start-up line: what runs, who may write, where the data lives, where the docs are."""
    redis = (
        redact(settings.redis_url)
        if settings.redis_url
        else (f"embedded Valkey (data in {settings.data_dir / 'valkey'})")
    )
    if settings.clickhouse_url:
        clickhouse = redact(settings.clickhouse_url)
    else:
        clickhouse = f"embedded chdb (data in {settings.data_dir / 'clickhouse'})"
    clickhouse = f"database {settings.clickhouse_database} on {clickhouse}"
    auth = (
        "open: any site_id, no key (HITSTREAM_INGEST_AUTH=key requires API keys)"
        if settings.ingest_auth == "open"
        else "key: a site's API key, or a public site's allowed origin"
    )
    used = [f"redis {redis}"]
    if roles & {Role.REPORT, Role.CONSUME}:
        used.append(f"clickhouse {clickhouse}")
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return (
        f"hitstream {role_name(roles)} ready: roles {', '.join(sorted(r.value for r in roles))}; "
        f"ingest auth {auth}; {'; '.join(used)}; "
        f"API docs http://{host}:{settings.port}/docs"
    )


async def _open(
    settings: Settings, roles: frozenset[Role], stack: contextlib.AsyncExitStack, metrics: Metrics
) -> AppState:
    """Open what the roles need, registering each close on the stack; return request state."""
    state: AppState = {
        "settings": settings,
        "metrics": metrics,
        "engine_checks": {},
        "role_checks": {},
    }
    uses_chdb = bool(roles & {Role.REPORT, Role.CONSUME}) and settings.clickhouse_url is None
    if settings.redis_url is None or uses_chdb:
        await to_thread.run_sync(secure_data_dir, settings.data_dir)
    redis_url = await _redis_url(settings, roles, stack)
    redis = await _open_redis(state, redis_url, stack)
    _open_shared(state, redis, all_in_one=roles == ALL_ROLES)
    await _run_shared(state, redis, stack)
    if Role.INGEST in roles:
        await _open_ingest(state, redis, stack)
    if roles & {Role.REPORT, Role.CONSUME}:
        await _open_registry(state, stack)
    if Role.REPORT in roles:
        await _open_readers(state, stack)
    if Role.CONSUME in roles:
        await _open_consumer(state, redis_url, redis, roles, stack)
    return state


async def _redis_url(
    settings: Settings, roles: frozenset[Role], stack: contextlib.AsyncExitStack
) -> str:
    """The Redis to use: the configured one, or an embedded Valkey that `serve` starts."""
    if settings.redis_url is not None:
        return settings.redis_url
    if roles != ALL_ROLES:
        raise ConfigError(
            "HITSTREAM_REDIS_URL is required for separate roles; "
            "the embedded Valkey is started only by `hitstream serve`"
        )
    valkey = EmbeddedValkey(settings.data_dir, settings.redis_appendfsync, settings.redis_maxmemory)
    url = await to_thread.run_sync(valkey.start)
    stack.callback(valkey.stop)
    await stack.enter_async_context(_background(valkey.supervise()))
    return url


async def _open_redis(state: AppState, url: str, stack: contextlib.AsyncExitStack) -> RedisClient:
    """A client of the Redis at `url`; the state's settings take its shard count."""
    redis, cluster = await open_redis(url, state["settings"].redis_cluster)
    stack.push_async_callback(redis.aclose)
    # The shard count follows the Redis found (one server or a cluster) unless set.
    settings = state["settings"] = state["settings"].for_redis(cluster)
    try:
        await layout.record(redis, settings.keys)
        if not cluster and await layout.adopt_legacy_keys(redis, settings.keys):
            log.info("salts and sessions of a release before shards were renamed")
    except REDIS_ERRORS as exc:  # ingest starts without Redis, and answers 503 meanwhile
        log.warning("cannot record the shard count in Redis: %s", exc)
    state["engine_checks"]["redis"] = redis.ping
    state["redis"] = redis
    return redis


def _open_shared(state: AppState, redis: RedisClient, all_in_one: bool) -> None:
    """What every role reads through Redis: sites, sessions, rate limits, salts."""
    settings = state["settings"]
    cache = SiteCache(redis, settings.keys)
    state["site_cache"] = cache
    state["sessions"] = Sessions(redis, settings.keys, settings.session_ttl_s)
    limiter = RateLimiter(redis, settings.keys)
    state["rate_limiter"] = limiter
    salts = DailySalts(redis, settings.keys)
    state["salts"] = salts
    state["auth_attempts"] = FailedAttempts(limiter, salts, settings)
    state["admin_token"] = _admin_token(settings, all_in_one)


async def _run_shared(
    state: AppState, redis: RedisClient, stack: contextlib.AsyncExitStack
) -> None:
    """The background work of every role: the queue's figures and erasing expired salts."""
    settings, metrics = state["settings"], state["metrics"]
    if settings.redis_url is None:
        # The embedded Valkey's AOF would keep expired salts; an external Redis's
        # operator rewrites its own (docs/security.md, Privacy).
        await stack.enter_async_context(_background(erase_expired_salts(redis, settings.keys)))
    metrics.refreshers.append(consumers.queue.refresher(redis, settings, metrics))
    await stack.enter_async_context(_background(consumers.queue.sample_forever(redis, settings)))


async def _open_ingest(
    state: AppState, redis: RedisClient, stack: contextlib.AsyncExitStack
) -> None:
    """The stream writer and its backlog watch."""
    settings = state["settings"]
    writer = StreamWriter(
        redis,
        settings.keys,
        settings.dedup_window_s,
        settings.backlog_high_water,
        settings.visitor_numbers,
    )
    await stack.enter_async_context(_background(writer.watch_backlog(BACKLOG_REFRESH_S)))
    state["writer"] = writer
    state["role_checks"]["ingest"] = writer.can_append
    # Checked and opened once per process, memory-mapped (ingest/places.py); None: country
    # only. Hashing the files takes about 0.1 s: off the event loop.
    places = await to_thread.run_sync(
        open_places, settings.geo_city_db, state["metrics"].geo_lookup_errors.inc
    )
    if places is not None:
        stack.callback(places.close)
    state["places"] = places
    await to_thread.run_sync(agents.parser)


async def _open_registry(state: AppState, stack: contextlib.AsyncExitStack) -> None:
    """ClickHouse migrated, and the sites registry kept cached in Redis."""
    settings = state["settings"]
    admin = await to_thread.run_sync(clickhouse_client, settings)
    stack.callback(close_quietly, admin)
    applied = await to_thread.run_sync(
        migrate, admin, settings.raw_ttl_days, settings.clickhouse_cluster
    )
    if applied:
        log.info("ClickHouse migrations applied: %s", applied)
    state["engine_checks"]["clickhouse"] = health.blocking_check(ClickHouseSink(admin).ping)
    registry = Registry(SiteStore(admin), state["site_cache"])
    await registry.ensure_cached()
    await stack.enter_async_context(
        _background(registry.keep_cached(settings.maintenance_interval_s))
    )
    state["registry"] = registry


async def _open_readers(state: AppState, stack: contextlib.AsyncExitStack) -> None:
    """The reporting role's reader pools, the client that stops queries, and exports."""
    settings = state["settings"]
    engine = engine_settings(settings.query_timeout_s, int(settings.query_max_memory))
    streamed = {**engine, "max_execution_time": settings.query_timeout_s * STREAM_TIME_FACTOR}
    # The client that stops queries is its own: those it stops may hold every other.
    killer = await to_thread.run_sync(clickhouse_client, settings)
    stack.callback(close_quietly, killer)
    kill = kill_queries(killer)

    async def pool(name: str, count: int, session: dict[str, Any]) -> Readers:
        clients = []
        for _ in range(count):
            client = await to_thread.run_sync(partial(clickhouse_client, settings, session))
            stack.callback(close_quietly, client)
            clients.append(client)
        return Readers(name, clients, settings.query_wait_s, kill)

    state["stats_readers"] = await pool("stats", STATS_READERS, engine)
    state["stream_readers"] = await pool("stream", STREAM_READERS, streamed)
    # Exports stream for as long as they take: each gets its own client.
    # One thread: an export is paced by the client reading it, not by the engine.
    state["export_client"] = partial(clickhouse_client, settings, {"max_threads": 1})
    exports = ExportLimits.from_settings(settings)
    removed = await to_thread.run_sync(exports.clear)
    if removed:
        log.info("removed %d export files left in %s", removed, exports.directory)
    state["export_limits"] = exports


async def _open_consumer(
    state: AppState,
    redis_url: str,
    redis: RedisClient,
    roles: frozenset[Role],
    stack: contextlib.AsyncExitStack,
) -> None:
    """The consumer with its own writing client, started; stopped first at shutdown."""
    settings = state["settings"]
    # On a ClickHouse cluster, inserts go through the Distributed tables in the
    # foreground, so the insert's token reaches each shard (schemas/cluster.py).
    on_cluster = CLUSTER_WRITER if settings.clickhouse_cluster else {}
    writing = {**WRITER_SESSION, **on_cluster}
    writer_client = await to_thread.run_sync(clickhouse_client, settings, writing)
    stack.callback(close_quietly, writer_client)
    name = settings.consumer_for(all_in_one=roles == ALL_ROLES)
    sink = ClickHouseSink(writer_client)
    consumer = Consumer(settings, name, redis_url, redis, sink, state["metrics"])
    await consumer.start()
    stack.push_async_callback(consumer.stop)
    state["role_checks"]["consumer"] = consumer.check


def _admin_token(settings: Settings, all_in_one: bool) -> str | None:
    """The configured admin token; `serve` makes one (kept in the data dir) if none is set."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    if not all_in_one:
        return None
    path = settings.data_dir / ADMIN_TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_urlsafe(32)
        write_private(path, token)
        # Shown once, when made; later starts say where it is kept.
        log.warning("admin token for /api/sites (kept in %s): %s", path, token)
        return token
    return path.read_text(encoding="utf-8").strip()


@contextlib.asynccontextmanager
async def _background(coroutine: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run a coroutine as a task for the app's lifetime; at shutdown cancel it and wait
    for it to end, so it lets go of its connections before they are closed."""
    task = asyncio.create_task(coroutine)
    try:
        yield task
    finally:
        # A cancellation can be swallowed where a loop catches a client's error (redis-py
        # may turn one into a TimeoutError): cancel again until it ends, within a bound.
        for _ in range(BACKGROUND_STOP_TRIES):
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=BACKGROUND_STOP_WAIT_S)
            if done:
                break
        else:
            log.warning("background task %s did not stop; leaving it", task.get_coro())

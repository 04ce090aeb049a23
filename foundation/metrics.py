"""GET /metrics: the figures operators watch, in the Prometheus text format.

Each app has its own registry. Processes that share a port behind one address can
share their counts the way prometheus-client documents: set PROMETHEUS_MULTIPROC_DIR
(one empty directory per host and role) and every process answers the sum;
`hitstream ingest --workers N` makes one for its workers (`share_counts`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foundation import __version__

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# `*_created` series double the exposition and nobody graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# A scrape runs these first: they read what lives elsewhere (the stream's state).
Refresh = Callable[[], Awaitable[None]]
# Who may scrape: raises the refusal (the app passes sites/access.py's check).
Guard = Callable[[Request[Any]], Awaitable[None]]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000)


class Metrics:
    """The instruments of one app, registered in its own registry."""

    def __init__(self, role: str = "serve") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the values live in shared files, not in a registry.
        self._registry = None if _multiprocess() else self.registry
        self.refreshers: list[Refresh] = []
        self.info = self._gauge(
            "hitstream_info", "the role and version of this process", labelnames=["role", "version"]
        )
        self.info.labels(role, __version__).set(1)
        self._http_metrics()
        self._queue_gauges()
        self._writer_metrics()

    def _gauge(self, name: str, doc: str, **kw: Any) -> Gauge:
        return Gauge(name, doc, registry=self._registry, multiprocess_mode="mostrecent", **kw)

    def _http_metrics(self) -> None:
        """What the HTTP side answered and stored."""
        registry = self._registry
        self.requests = Counter(
            "hitstream_http_requests",
            "HTTP requests answered, by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "hitstream_http_request_duration_seconds",
            "time to answer an HTTP request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.events_accepted = Counter(
            "hitstream_events_accepted", "events stored in the stream (2xx)", registry=registry
        )
        self.bot_events_dropped = Counter(
            "hitstream_bot_events_dropped",
            "events answered 202 and not stored: sent by a crawler or headless browser",
            registry=registry,
        )
        self.ingest_refused = Counter(
            "hitstream_ingest_refused_requests",
            "ingest requests refused, nothing stored (by status)",
            ["status"],
            registry=registry,
        )
        self.geo_lookup_errors = Counter(
            "hitstream_geo_lookup_errors",
            "city-database lookups that failed (a damaged database): the event kept its country",
            registry=registry,
        )

    def _queue_gauges(self) -> None:
        """The stream's state, refreshed from Redis when scraped."""
        gauge = self._gauge
        self.stream_length = gauge("hitstream_stream_length", "entries in the event stream")
        self.consumer_lag = gauge(
            "hitstream_consumer_lag", "entries the consumer group has not read yet"
        )
        self.pending = gauge("hitstream_pending_entries", "entries read but not acknowledged")
        self.oldest_pending = gauge(
            "hitstream_oldest_pending_age_seconds", "age of the oldest unacknowledged entry"
        )
        self.dead_letters = gauge("hitstream_dead_letters", "entries in the dead-letter stream")
        # The same, per shard of the stream (the unlabelled ones are their sums).
        shard = {"labelnames": ["shard"]}
        self.shard_length = gauge("hitstream_shard_stream_length", "entries in a shard", **shard)
        self.shard_lag = gauge(
            "hitstream_shard_consumer_lag", "entries of a shard the group has not read", **shard
        )
        self.shard_pending = gauge(
            "hitstream_shard_pending_entries", "entries of a shard read, not acknowledged", **shard
        )
        self.shard_dead_letters = gauge(
            "hitstream_shard_dead_letters", "entries in a shard's dead-letter stream", **shard
        )

    def _writer_metrics(self) -> None:
        """What the consumers wrote to ClickHouse or set aside."""
        registry = self._registry
        self.batch_rows = Histogram(
            "hitstream_batch_insert_rows",
            "rows per ClickHouse insert",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "hitstream_batch_insert_duration_seconds",
            "time of one ClickHouse insert",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.events_written = Counter(
            "hitstream_events_written", "events written to ClickHouse", registry=registry
        )
        self.dead_lettered = Counter(
            "hitstream_dead_lettered", "entries moved to the dead-letter stream", registry=registry
        )

    def exposition(self) -> bytes:
        """The text format of every instrument (summed over processes in multiprocess mode)."""
        if not _multiprocess():
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def _multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR))


def share_counts(directory: str) -> None:
    """Keep this process's instruments in `directory`, summed with every other process
    using it. prometheus-client picks its value store when imported, from the
    environment: a process that set the variable later picks again here, before it makes
    any instrument."""
    os.environ[MULTIPROC_DIR] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class MetricsState(TypedDict):
    """What /metrics reads from the app's lifespan state."""

    metrics: Metrics


async def get_metrics(request: Request[MetricsState]) -> Response:
    """The Prometheus text exposition; the stream's figures are read at each scrape."""
    metrics = request.state["metrics"]
    for refresh in metrics.refreshers:
        await refresh()
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def routes(guard: Guard | None = None) -> list[BaseRoute]:
    """GET /metrics, behind `guard` when given (key mode: a token)."""
    if guard is None:
        return [Route("/metrics", get_metrics, methods=["GET"])]
    check = guard

    async def guarded(request: Request[MetricsState]) -> Response:
        await check(request)
        return await get_metrics(request)

    return [Route("/metrics", guarded, methods=["GET"])]


class RequestMetrics:
    """ASGI middleware: count each request by its route template (not its raw path, which
    would make a label per site and key) and status, and time it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self._metrics = metrics
        # The labelled children, looked up once per (method, route, status): `labels()`
        # costs more than the increment itself on the ingest hot path.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            key = (scope["method"], getattr(route, "path", None) or "unmatched", status)
            children = self._children.get(key)
            if children is None:
                method, template, _ = key
                children = (
                    self._metrics.requests.labels(method, template, str(status)),
                    self._metrics.latency.labels(method, template),
                )
                self._children[key] = children
            count, latency = children
            count.inc()
            latency.observe(time.perf_counter() - started)

"""GET /stats (one site's totals and top paths for one day) and POST /api/v2/query (any
range, metric, breakdown and filter, in Plausible's Stats API v2 shape)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from foundation.http import (
    APIError,
    JSONResponse,
    api_routes,
    client_ip,
    read_json,
    validation_details,
)
from reporting import answer, goals
from reporting.export import export
from reporting.exportlimits import ExportLimits
from reporting.model import QueryError
from reporting.parse import parse
from reporting.queries import Readers, StatsReader
from schemas.query import QueryBody
from schemas.stats import StatsQuery
from sites.access import AccessState, require_reader


class ReportingState(AccessState):
    """What the reporting routes read from the app's lifespan state."""

    stats_readers: Readers
    stream_readers: Readers
    export_client: Callable[[], Client]
    export_limits: ExportLimits


async def get_stats(request: Request[ReportingState]) -> Response:
    """Answer from the aggregate tables (UTC days), or for a site with a time zone from
    its events (its local days); a day without data is zeros and an empty list.

    Unknown parameters are refused (400) rather than ignored: `from`/`to` would
    otherwise silently answer for today.
    """
    try:
        query = StatsQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise APIError(400, "invalid stats query", validation_details(exc)) from None
    await require_reader(request, query.site_id)
    readers = request.state["stats_readers"]
    tz = ZoneInfo(await request.state["site_cache"].timezone(query.site_id))
    # An engine error answers 503 (foundation.http); anything else is a bug, logged.
    if tz.key == "UTC":
        stats = await readers.run(
            client_ip(request),
            lambda reader: reader.day_stats(query.site_id, query.date, query.event_type),
        )
    else:  # the site's own days: its zone's today unless a date is given
        day = query.date if "date" in request.query_params else dt.datetime.now(tz).date()
        ttl = request.state["settings"].raw_ttl_days
        if ttl and day < dt.datetime.now(tz).date() - dt.timedelta(days=ttl - 1):
            raise APIError(
                400,
                "this day's raw events have expired",
                [{"field": "date", "message": f"a site with a time zone is read from raw "
                  f"events, kept {ttl} days (HITSTREAM_RAW_TTL_DAYS)"}],
            )  # fmt: skip
        stats = await readers.run(
            client_ip(request), answer.local_day_stats, query.site_id, day, query.event_type, tz
        )
    return JSONResponse(
        {
            "site_id": stats.site_id,
            "date": stats.day.isoformat(),
            "total_views": stats.total_views,
            "unique_users": stats.unique_users,
            "unique_visitors": stats.unique_visitors,
            "top_paths": [{"path": path, "views": views} for path, views in stats.top_paths],
        }
    )


CSV = "text/csv"


async def post_query(request: Request[ReportingState]) -> Response:
    """A stats query; 400 names the part of the query at fault. `site_id` is the site's
    id or one of its domains (as Plausible's clients send it)."""
    raw = await read_json(request, request.state["settings"].max_body_bytes)
    try:
        body = QueryBody.model_validate(raw)
    except ValidationError as exc:
        raise query_refused(validation_details(exc)) from None
    echo = body.model_dump(include={"site_id", "metrics", "dimensions", "filters"}, mode="json")
    body = body.model_copy(
        update={"site_id": await request.state["site_cache"].resolve(body.site_id)}
    )
    await require_reader(request, body.site_id)
    csv = body.format == "csv" or CSV in request.headers.get("accept", "")
    try:
        the_plan = await plan_query(request, body, csv=csv)
    except QueryError as exc:
        detail = {"field": exc.field, "message": exc.message}
        raise query_refused([detail], exc.plausible) from None
    if csv:
        return await LentStream.open(
            request.state["stream_readers"], client_ip(request), answer.csv_lines, the_plan
        )
    result = await run_plan(request, the_plan, echo)
    return JSONResponse(result) if result is not None else Response(status_code=499)


def query_refused(details: list[dict[str, Any]], error: str | None = None) -> APIError:
    """A refused query's 400: `error` is the first reason (Plausible's clients show only
    `error`), in Plausible's words where it has them, `details` every reason."""
    first = details[0] if details else {"field": "body", "message": "invalid query"}
    return APIError(400, error or f"{first['field']}: {first['message']}", details)


async def plan_query(
    request: Request[ReportingState], body: QueryBody, csv: bool = False
) -> answer.Plan:
    """Check a query (of a site resolved and read-checked already) and plan it in the
    site's zone; raises QueryError. The Stats API v1 (reporting/legacy_routes.py) plans
    its translated queries here too, so both answer alike."""
    readers = request.state["stats_readers"]
    tz = ZoneInfo(await request.state["site_cache"].timezone(body.site_id))
    now = dt.datetime.now(dt.UTC)
    query = parse(body)
    if goals.uses_goals(query):
        query = goals.with_goals(query, await request.state["site_cache"].goals(body.site_id))
    first_day = None
    if query.date_range.keyword == "all":
        first_day = await readers.run(
            client_ip(request), lambda reader: reader.first_day(body.site_id)
        )
    ttl = request.state["settings"].raw_ttl_days
    return answer.plan(query, tz, now, first_day, csv=csv, raw_ttl_days=ttl)


async def run_plan(
    request: Request[ReportingState], the_plan: answer.Plan, echo: dict[str, Any]
) -> dict[str, Any] | None:
    """The JSON answer of a planned query (None: the client has gone)."""
    now = dt.datetime.now(dt.UTC)
    return await request.state["stats_readers"].run_while(
        client_ip(request), lambda: disconnected(request), answer.answer, the_plan, echo, now
    )


async def disconnected(request: Request[Any]) -> None:
    """Return once the client has gone (its body is read: the next message is the end)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class LentStream(StreamingResponse):
    """A streamed answer over a client lent from a pool: its first chunk is pulled
    before the answer begins (an engine error or limit is answered as such, not as a
    cut 200), and the client is given back when the answer ends, however it ends (sent,
    cut by the server, or the client gone), once its engine stream is closed."""

    def __init__(
        self, readers: Readers, reader: StatsReader, chunks: Iterator[bytes], first: bytes
    ) -> None:
        self._readers, self._reader, self._chunks = readers, reader, chunks
        self._whole = False
        super().__init__(self._body(first), media_type=f"{CSV}; charset=utf-8")

    @classmethod
    async def open(
        cls, readers: Readers, owner: str,
        fn: Callable[[StatsReader, answer.Plan], Iterator[bytes]], the_plan: answer.Plan,
    ) -> LentStream:  # fmt: skip
        """Borrow (a 503 if every reader is busy) and pull the first chunk."""
        reader = await readers.borrow(owner)
        chunks = fn(reader, the_plan)
        try:
            first = await readers.pull(reader, chunks)
        except BaseException:
            await readers.finish(reader, chunks, whole=True)
            readers.give_back(reader)
            raise
        return cls(readers, reader, chunks, first or b"")

    async def _body(self, first: bytes) -> AsyncIterator[bytes]:
        chunk: bytes | None = first
        while chunk is not None:
            yield chunk
            chunk = await self._readers.pull(self._reader, self._chunks)
        self._whole = True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._readers.finish(self._reader, self._chunks, self._whole)
            self._readers.give_back(self._reader)


def routes() -> list[BaseRoute]:
    """Reporting routes: GET /stats also under `/api`; the query at Plausible's path."""
    return [
        *api_routes("GET", [("/stats", get_stats)]),
        Route("/api/v2/query", post_query, methods=["POST"]),
        Route("/api/sites/{site_id}/export", export, methods=["GET"]),
    ]

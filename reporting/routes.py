"""GET /stats (one site's totals and top paths for one day) and POST /api/v2/query (any
range, metric, breakdown and filter, in Plausible's Stats API v2 shape)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from anyio import to_thread
from clickhouse_connect.driver.client import Client
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from hitstream.http import APIError, JSONResponse, api_routes, read_model, validation_details
from reporting import answer
from reporting.export import export
from reporting.exportlimits import ExportLimits
from reporting.queries import StatsReader
from schemas.query import QueryBody, QueryError, parse
from schemas.stats import StatsQuery
from sites.access import AccessState, require_reader


class ReportingState(AccessState):
    """What the reporting routes read from the app's lifespan state."""

    stats_reader: StatsReader
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
    reader = request.state["stats_reader"]
    tz = ZoneInfo(await request.state["site_cache"].timezone(query.site_id))
    # An engine error answers 503 (hitstream.http); anything else is a bug, logged.
    if tz.key == "UTC":
        stats = await to_thread.run_sync(
            reader.day_stats, query.site_id, query.date, query.event_type
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
        stats = await to_thread.run_sync(
            answer.local_day_stats, reader, query.site_id, day, query.event_type, tz
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
    """A stats query; 400 names the part of the query at fault."""
    body = await read_model(
        request, QueryBody, request.state["settings"].max_body_bytes, "invalid query"
    )
    await require_reader(request, body.site_id)
    csv = body.format == "csv" or CSV in request.headers.get("accept", "")
    reader = request.state["stats_reader"]
    tz = ZoneInfo(await request.state["site_cache"].timezone(body.site_id))
    now = dt.datetime.now(dt.UTC)
    try:
        query = parse(body)
        first_day = None
        if query.date_range.keyword == "all":
            first_day = await to_thread.run_sync(reader.first_day, body.site_id)
        ttl = request.state["settings"].raw_ttl_days
        plan = answer.plan(query, tz, now, first_day, csv=csv, raw_ttl_days=ttl)
    except QueryError as exc:
        raise APIError(
            400, "invalid query", [{"field": exc.field, "message": exc.message}]
        ) from None
    if csv:
        return StreamingResponse(answer.csv_lines(reader, plan), media_type=f"{CSV}; charset=utf-8")
    echo = body.model_dump(include={"site_id", "metrics", "dimensions", "filters"}, mode="json")
    return JSONResponse(await to_thread.run_sync(answer.answer, reader, plan, echo, now))


def routes() -> list[BaseRoute]:
    """Reporting routes: GET /stats also under `/api`; the query at Plausible's path."""
    return [
        *api_routes("GET", [("/stats", get_stats)]),
        Route("/api/v2/query", post_query, methods=["POST"]),
        Route("/api/sites/{site_id}/export", export, methods=["GET"]),
    ]

"""GET /stats: one site's totals, unique users and top paths for one UTC day."""

from __future__ import annotations

from anyio import to_thread
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hitstream.http import APIError, JSONResponse, api_routes, validation_details
from reporting.queries import StatsReader
from schemas.stats import StatsQuery
from sites.access import AccessState, require_reader


class ReportingState(AccessState):
    """What the reporting routes read from the app's lifespan state."""

    stats_reader: StatsReader


async def get_stats(request: Request[ReportingState]) -> Response:
    """Answer from the aggregate tables; a day without data is zeros and an empty list.

    Unknown parameters are refused (400) rather than ignored: `from`/`to` would
    otherwise silently answer for today.
    """
    try:
        query = StatsQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise APIError(400, "invalid stats query", validation_details(exc)) from None
    await require_reader(request, query.site_id)
    reader = request.state["stats_reader"]
    # An engine error answers 503 (hitstream.http); anything else is a bug, logged.
    stats = await to_thread.run_sync(reader.day_stats, query.site_id, query.date, query.event_type)
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


def routes() -> list[BaseRoute]:
    """Reporting routes, each also under `/api`."""
    return api_routes("GET", [("/stats", get_stats)])

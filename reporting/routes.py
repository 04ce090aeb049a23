"""GET /stats: one site's totals, unique users and top paths for one UTC day."""

from __future__ import annotations

from anyio import to_thread
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hitstream.access import is_admin
from hitstream.http import APIError, JSONResponse, api_routes, validation_details
from hitstream.registry import RegistryCache
from hitstream.settings import Settings
from ingest.auth import KEY_HEADER
from reporting.queries import StatsReader
from schemas.stats import StatsQuery


async def get_stats(request: Request) -> Response:
    """Answer from the aggregate tables; a day without data is zeros and an empty list."""
    try:
        query = StatsQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise APIError(400, "invalid stats query", validation_details(exc)) from None
    await _authorize(request, query.site_id)
    reader: StatsReader = request.state.stats_reader
    # An engine error answers 503 (hitstream.http); anything else is a bug, logged.
    stats = await to_thread.run_sync(reader.day_stats, query.site_id, query.date, query.event_type)
    return JSONResponse(
        {
            "site_id": stats.site_id,
            "date": stats.day.isoformat(),
            "total_views": stats.total_views,
            "unique_users": stats.unique_users,
            "top_paths": [{"path": path, "views": views} for path, views in stats.top_paths],
        }
    )


async def _authorize(request: Request, site_id: str) -> None:
    """With HITSTREAM_INGEST_AUTH=key: a key of this site, or the admin token."""
    settings: Settings = request.state.settings
    if settings.ingest_auth != "key" or is_admin(request):
        return
    api_key = request.headers.get(KEY_HEADER)
    cache: RegistryCache = request.state.registry_cache
    key = await cache.key(api_key) if api_key else None
    if key is None:
        raise APIError(
            401,
            "an API key of this site (or the admin token) is required",
            [{"field": KEY_HEADER, "message": "missing, invalid, expired or revoked"}],
        )
    if key.site_id != site_id:
        raise APIError(
            403,
            "this key belongs to another site",
            [{"field": "site_id", "message": f"the key reads {key.site_id} only"}],
        )


def routes() -> list[BaseRoute]:
    """Reporting routes, each also under `/api`."""
    return api_routes("GET", [("/stats", get_stats)])

"""Plausible's Stats API v1 (`GET /api/v1/stats/{realtime/visitors,aggregate,
timeseries,breakdown}`): each call checked as Plausible checks it
(reporting/legacy_params.py, legacy_filters.py), translated into a v2 query and answered
through the same planner and engine as `POST /api/v2/query` (reporting/routes.py), then
reshaped (reporting/legacy_shape.py). Authentication and site resolution come first, as
in Plausible's `AuthorizePublicAPI` plug."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from foundation.http import APIError, JSONResponse, validation_details
from reporting import legacy_filters, legacy_params, legacy_shape
from reporting.expressions import empty_label
from reporting.model import QueryError
from reporting.routes import ReportingState, plan_query, run_plan
from schemas.query import GOAL_DIMENSION, QueryBody
from sites.access import AUTHORIZATION, KEY_HEADER, bearer, require_reader

MISSING_KEY = "Missing API key. Please use a valid Plausible API key as a Bearer Token."
MISSING_SITE = "Missing site ID. Please provide the required site_id parameter with your request."
INVALID = (
    "Invalid API key or site ID. Please make sure you're using a valid API key with access "
    "to the site you've requested."
)
MAX_SITE_ID = 128  # the v2 body's bound
REALTIME = dt.timedelta(minutes=5)
MAX_OFFSET = 10_000_000  # the v2 pagination's bound: pages past it are empty
# Breakdowns leave out the rows whose value is empty for these (Plausible's rule).
NO_EMPTY_ROWS = frozenset({
    "visit:country", "visit:region", "visit:entry_page", "visit:exit_page", "visit:utm_source",
    "visit:utm_medium", "visit:utm_campaign", "visit:utm_term", "visit:utm_content",
})  # fmt: skip


def _invalid() -> APIError:
    return APIError(
        401,
        INVALID,
        [{"field": "site_id", "message": "unknown site, or a key without access to it"}],
        headers={"WWW-Authenticate": "Bearer"},
    )


async def site_of(request: Request[ReportingState]) -> str:
    """The id of the site `site_id` names (its id or one of its domains), readable with
    the request's credentials as a v2 query is (reporting/routes.py); in key mode an
    unknown site is the 401 a wrong key is, as Plausible answers."""
    keyed = request.state["settings"].ingest_auth == "key"
    if keyed and bearer(request) is None and KEY_HEADER not in request.headers:
        raise APIError(
            401,
            MISSING_KEY,
            [{"field": AUTHORIZATION, "message": "send Authorization: Bearer <key>"}],
            headers={"WWW-Authenticate": "Bearer"},
        )
    name = request.query_params.get("site_id", "").strip()
    if not name:
        raise APIError(400, MISSING_SITE, [{"field": "site_id", "message": "missing"}])
    if len(name) > MAX_SITE_ID:
        raise _invalid()
    cache = request.state["site_cache"]
    site_id = await cache.resolve(name)
    try:
        await require_reader(request, site_id)
    except APIError as exc:
        if exc.status_code in (401, 403):
            raise _invalid() from None
        raise
    if keyed and await cache.site(site_id) is None:
        raise _invalid()
    return site_id


async def _today(request: Request[ReportingState], site_id: str) -> dt.date:
    tz = ZoneInfo(await request.state["site_cache"].timezone(site_id))
    return dt.datetime.now(tz).date()


async def _run(
    request: Request[ReportingState], body: dict[str, Any]
) -> tuple[list[str] | None, dict[str, Any]]:
    """A v2 query planned and answered as `POST /api/v2/query` does: its time buckets'
    labels and its JSON answer. A fault the v1 checks leave to v2 is a 400 naming it."""
    try:
        query = QueryBody.model_validate(body)
        the_plan = await plan_query(request, query)
    except ValidationError as exc:
        raise APIError(400, "invalid query", validation_details(exc)) from None
    except QueryError as exc:
        field = exc.field.replace("date_range", "date")
        raise APIError(
            400, f"{field}: {exc.message}", [{"field": field, "message": exc.message}]
        ) from None
    result = await run_plan(request, the_plan, {})
    if result is None:
        raise APIError(499, "the client has gone")
    return the_plan.buckets, result


async def _filters(request: Request[ReportingState], site_id: str) -> list[list[Any]]:
    """The v2 filters of `filters`, goal filters checked against the site's goals."""
    filters = legacy_filters.translate(request.query_params.get("filters"))
    if any(item[1] == GOAL_DIMENSION for item in filters):
        goals = await request.state["site_cache"].goals(site_id)
        legacy_filters.check_goals(filters, {goal.display_name for goal in goals})
    return filters


def _range(first: dt.date, last: dt.date) -> list[str]:
    return [first.isoformat(), last.isoformat()]


async def realtime_visitors(request: Request[ReportingState]) -> Response:
    """The visitors of the last 5 minutes (any event), as a bare number."""
    site_id = await site_of(request)
    now = dt.datetime.now(dt.UTC)
    body = {
        "site_id": site_id,
        "metrics": ["visitors"],
        "date_range": [(now - REALTIME).isoformat(), now.isoformat()],
    }
    _, result = await _run(request, body)
    return JSONResponse(legacy_shape.totals(result, ["visitors"])["visitors"])


async def aggregate(request: Request[ReportingState]) -> Response:
    """Totals of the range; `compare=previous_period` adds the period before."""
    site_id = await site_of(request)
    params = request.query_params
    period = legacy_params.period_of(params)
    today = await _today(request, site_id)
    first, last = legacy_params.days_of(period, params, today)
    filters = await _filters(request, site_id)
    metrics = legacy_params.metrics_of(params, legacy_filters.properties(filters))
    body = {
        "site_id": site_id,
        "metrics": legacy_params.v2_metrics(metrics, per_group=False),
        "filters": filters,
    }
    _, result = await _run(request, {**body, "date_range": _range(first, last)})
    now = legacy_shape.totals(result, metrics)
    before = None
    if params.get("compare") == "previous_period":
        earlier = previous_period(first, last, today)
        _, result = await _run(request, {**body, "date_range": _range(*earlier)})
        before = legacy_shape.totals(result, metrics)
    return JSONResponse(legacy_shape.aggregate(now, before))


def previous_period(first: dt.date, last: dt.date, today: dt.date) -> tuple[dt.date, dt.date]:
    """Plausible's previous period: as many days before the range as it has up to today
    (a month that has not ended is compared with as many days before it)."""
    end = min(last, today) if today >= first else last
    length = end - first + dt.timedelta(days=1)
    start = first - length
    if start < legacy_params.FIRST_DAY:
        raise legacy_params.bad(
            "Error parsing `date` parameter: invalid_date. The period compared with starts "
            f"before {legacy_params.FIRST_DAY}.",
            "compare",
        )
    return start, end - length


async def timeseries(request: Request[ReportingState]) -> Response:
    """One row per bucket of the range, every bucket present (conversion_rate per
    bucket, as Plausible answers it); event and visit metrics as two v2 queries
    (legacy_shape.split: the same numbers, and past raw retention where the daily
    aggregates and visits hold them)."""
    site_id = await site_of(request)
    params = request.query_params
    period = legacy_params.period_of(params)
    first, last = legacy_params.days_of(period, params, await _today(request, site_id))
    interval = legacy_params.interval_of(params, period)
    filters = await _filters(request, site_id)
    metrics = legacy_params.metrics_of(params, legacy_filters.properties(filters))
    body = {
        "site_id": site_id,
        "filters": filters,
        "date_range": _range(first, last),
        "dimensions": [f"time:{interval}"],
    }
    labels: list[str] | None = None
    parts = []
    for part in legacy_shape.split(metrics):
        v2 = legacy_params.v2_metrics(part, per_group=True)
        labels, result = await _run(request, {**body, "metrics": v2})
        parts.append((result, part))
    return JSONResponse(legacy_shape.timeseries(parts, metrics, labels or []))


async def breakdown(request: Request[ReportingState]) -> Response:
    """Rows by a property's values, the first metric's largest first, paged."""
    site_id = await site_of(request)
    params = request.query_params
    period = legacy_params.period_of(params)
    first, last = legacy_params.days_of(period, params, await _today(request, site_id))
    prop = legacy_params.property_of(params)
    filters = await _filters(request, site_id)
    metrics = legacy_params.metrics_of(params, legacy_filters.properties(filters), prop)
    limit, page = legacy_params.limit_of(params), legacy_params.page_of(params)
    dimensions = legacy_shape.dimensions_of(prop)
    offset = (page - 1) * limit
    if offset > MAX_OFFSET:
        return JSONResponse({"results": []})
    v2 = legacy_params.v2_metrics(metrics, legacy_params.per_group(prop))
    # Goals are ordered by the metric alone (Plausible's); other values then by name.
    names = [] if prop == GOAL_DIMENSION else [[d, "asc"] for d in dimensions]
    _, result = await _run(
        request,
        {
            "site_id": site_id,
            "metrics": v2,
            "filters": filters + _no_empty_rows(dimensions),
            "date_range": _range(first, last),
            "dimensions": dimensions,
            "order_by": [[v2[0], "desc"], *names],
            "pagination": {"limit": limit, "offset": offset},
        },
    )
    return JSONResponse(legacy_shape.breakdown(result, dimensions, metrics))


def _no_empty_rows(dimensions: list[str]) -> list[list[Any]]:
    return [["is_not", d, [empty_label(d)]] for d in dimensions if d in NO_EMPTY_ROWS]


def routes() -> list[BaseRoute]:
    """The Stats API v1 at Plausible's paths."""
    return [
        Route("/api/v1/stats/realtime/visitors", realtime_visitors, methods=["GET"]),
        Route("/api/v1/stats/aggregate", aggregate, methods=["GET"]),
        Route("/api/v1/stats/timeseries", timeseries, methods=["GET"]),
        Route("/api/v1/stats/breakdown", breakdown, methods=["GET"]),
    ]

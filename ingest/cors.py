"""CORS for the ingest routes: the headers that let a browser's tracker read an answer
(an acceptance, a refusal) and the preflights of POST /event(s) and /api/send; never
credentials or cookies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from foundation.errors import REDIS_ERRORS
from foundation.http import APIError
from sites.access import KEY_HEADER, AccessState

AccessT = TypeVar("AccessT", bound=AccessState)
PREFLIGHT_MAX_AGE_S = "86400"


def cors_headers(origin: str | None) -> dict[str, str]:
    """Headers letting a browser on `origin` read the answer; never credentials or cookies."""
    if origin is None:
        return {}
    headers = {"Access-Control-Allow-Origin": origin}
    if origin != "*":
        headers["Vary"] = "Origin"
    return headers


async def refusal_headers(request: Request[AccessT]) -> dict[str, str]:
    """CORS headers for a refusal: any origin in open mode; in key mode an origin some
    public site allows (a refusal tells it nothing about which)."""
    origin = request.headers.get("origin")
    if not origin:
        return {}
    if request.state["settings"].ingest_auth == "open":
        return cors_headers("*")
    try:
        allowed = await request.state["site_cache"].origin_allowed_somewhere(origin)
    except REDIS_ERRORS:
        return {}
    return cors_headers(origin) if allowed else {}


def preflight_allowing(*request_headers: str) -> Callable[[Request[Any]], Awaitable[Response]]:
    """The CORS preflight of a POST route whose requests carry these headers: any origin
    in open mode, in key mode an origin some public site allows (403 otherwise)."""
    allow_headers = ", ".join(request_headers)

    async def preflight(request: Request[Any]) -> Response:
        origin = request.headers.get("origin")
        if request.state["settings"].ingest_auth == "open":
            allowed: str | None = "*"
        elif origin and await request.state["site_cache"].origin_allowed_somewhere(origin):
            allowed = origin
        else:
            detail = [{"field": "origin", "message": str(origin)}]
            raise APIError(403, "origin not allowed", detail)
        headers = {
            **cors_headers(allowed),
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": allow_headers,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_S,
        }
        return Response(status_code=204, headers=headers)

    return preflight


# POST /event(s)'s preflight.
preflight = preflight_allowing("content-type", KEY_HEADER)

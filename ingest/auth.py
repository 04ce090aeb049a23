"""Who may write where: API keys, public sites from allowed origins, or open mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from hitstream.http import APIError
from hitstream.registry import RegistryCache
from hitstream.settings import Settings
from ingest.ratelimit import Bucket, RateLimiter
from schemas.event import EventIn

KEY_HEADER = "x-api-key"
PREFLIGHT_MAX_AGE_S = "86400"


@dataclass(frozen=True)
class Caller:
    """An authorised writer: the site its key or origin fixes (None: any, in open mode)."""

    site_id: str | None
    bucket: str | None
    cors_origin: str | None


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authorize(request: Request, events: Sequence[EventIn]) -> Caller:
    """Resolve the caller or raise 401/403; then apply its rate limits (429)."""
    caller = await _resolve(request, events)
    settings: Settings = request.state.settings
    limiter: RateLimiter = request.state.rate_limiter
    buckets = [
        Bucket(
            f"ip:{_client_ip(request)}", settings.rate_limit_ip_per_s, settings.rate_limit_ip_burst
        )
    ]
    if caller.bucket:
        buckets.append(
            Bucket(caller.bucket, settings.rate_limit_key_per_s, settings.rate_limit_key_burst)
        )
    verdict = await limiter.check(buckets)
    if not verdict.allowed:
        raise APIError(
            429,
            "rate limit exceeded, retry later",
            [{"field": "rate", "message": f"retry after {verdict.retry_after_s}s"}],
            headers=verdict.headers(),
        )
    return caller


async def _resolve(request: Request, events: Sequence[EventIn]) -> Caller:
    settings: Settings = request.state.settings
    cache: RegistryCache = request.state.registry_cache
    origin = request.headers.get("origin")
    api_key = request.headers.get(KEY_HEADER)
    if api_key is not None:
        key = await cache.key(api_key)
        if key is None:
            raise APIError(401, "invalid, expired or revoked API key", [_key_detail()])
        wrong = [i for i, e in enumerate(events) if e.site_id not in (None, key.site_id)]
        if wrong:
            raise APIError(
                403,
                "site_id does not match the API key's site",
                [
                    {
                        "field": "site_id",
                        "message": f"this key writes to {key.site_id}",
                        "index": wrong[0],
                    }
                ],
            )
        site = await cache.site(key.site_id)
        allowed = origin if site and origin and origin in site.allowed_origins else None
        return Caller(key.site_id, f"key:{key.key_id}", allowed)
    if settings.ingest_auth == "open":
        return Caller(None, None, "*")
    site_ids = {event.site_id for event in events}
    if len(site_ids) == 1 and origin:
        (site_id,) = site_ids
        site = await cache.site(site_id) if site_id else None
        if site and site.public and origin in site.allowed_origins:
            return Caller(site.site_id, f"site:{site.site_id}", origin)
    raise APIError(401, "an API key is required", [_key_detail()])


def _key_detail() -> dict[str, str]:
    return {
        "field": KEY_HEADER,
        "message": "send the site's key in x-api-key (public sites: from an allowed origin)",
    }


def cors_headers(origin: str | None) -> dict[str, str]:
    """Headers letting a browser on `origin` read the answer; never credentials or cookies."""
    if origin is None:
        return {}
    headers = {"Access-Control-Allow-Origin": origin}
    if origin != "*":
        headers["Vary"] = "Origin"
    return headers


async def preflight(request: Request) -> Response:
    """CORS preflight for POST /event(s): any origin in open mode, allowed ones otherwise."""
    settings: Settings = request.state.settings
    cache: RegistryCache = request.state.registry_cache
    origin = request.headers.get("origin")
    if settings.ingest_auth == "open":
        allowed: str | None = "*"
    elif origin and await cache.origin_allowed_somewhere(origin):
        allowed = origin
    else:
        raise APIError(403, "origin not allowed", [{"field": "origin", "message": str(origin)}])
    headers = {
        **cors_headers(allowed),
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": f"content-type, {KEY_HEADER}",
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_S,
    }
    return Response(status_code=204, headers=headers)

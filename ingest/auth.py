"""Who may write where: API keys, public sites from allowed origins, or open mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hitstream.http import APIError
from hitstream.registry import RegistryCache, decode_site, key_id_of, verify_key
from hitstream.settings import Settings
from ingest.ratelimit import Bucket, Lookup, RateLimiter
from schemas.event import EventIn

KEY_HEADER = "x-api-key"
PREFLIGHT_MAX_AGE_S = "86400"


@dataclass(frozen=True)
class Caller:
    """An authorised writer: the site its key or origin fixes (None: any, in open mode)."""

    site_id: str | None
    cors_origin: str | None


async def authorize(request: Request, events: Sequence[EventIn]) -> Caller:
    """Resolve the caller (401/403) and apply its rate limits (429) in one round trip.

    With a key: the key's record and the buckets of the client IP and the key.
    Open mode: the IP bucket. A public site from an allowed origin: its record and
    the buckets of the IP and the site.
    """
    settings: Settings = request.state.settings
    cache: RegistryCache = request.state.registry_cache
    origin = request.headers.get("origin")
    api_key = request.headers.get(KEY_HEADER)
    if api_key is not None:
        key_id = key_id_of(api_key)
        if key_id is None:
            raise APIError(401, "invalid, expired or revoked API key", [_key_detail()])
        raw = await _limit(request, f"key:{key_id}", Lookup(cache.keys_hash, key_id))
        key = verify_key(api_key, raw)
        if key is None:
            raise APIError(401, "invalid, expired or revoked API key", [_key_detail()])
        wrong = [i for i, e in enumerate(events) if e.site_id not in (None, key.site_id)]
        if wrong:
            detail = {"field": "site_id", "message": f"this key writes to {key.site_id}"}
            raise APIError(
                403, "site_id does not match the API key's site", [{**detail, "index": wrong[0]}]
            )
        site = await cache.site(key.site_id) if origin else None
        allowed = origin if site and origin in site.allowed_origins else None
        return Caller(key.site_id, allowed)
    if settings.ingest_auth == "open":
        await _limit(request)
        return Caller(None, "*")
    site_ids = {event.site_id for event in events}
    if len(site_ids) == 1 and origin:
        (site_id,) = site_ids
        if site_id:
            site = decode_site(
                await _limit(request, f"site:{site_id}", Lookup(cache.sites_hash, site_id))
            )
            if site and site.public and origin in site.allowed_origins:
                return Caller(site.site_id, origin)
    raise key_required()


async def _limit(request: Request, bucket: str | None = None, lookup: Lookup | None = None) -> Any:
    """Take a token from the client IP's bucket (and `bucket`'s), or raise 429."""
    settings: Settings = request.state.settings
    ip = request.client.host if request.client else "unknown"
    buckets = [Bucket(f"ip:{ip}", settings.rate_limit_ip_per_s, settings.rate_limit_ip_burst)]
    if bucket is None and lookup is None and not buckets[0].live:
        return None  # open mode without an IP limit: nothing to take or look up
    limiter: RateLimiter = request.state.rate_limiter
    if bucket:
        rate, burst = settings.rate_limit_key_per_s, settings.rate_limit_key_burst
        buckets.append(Bucket(bucket, rate, burst))
    verdict, record = await limiter.check(buckets, lookup)
    if not verdict.allowed:
        raise APIError(
            429,
            "rate limit exceeded, retry later",
            [{"field": "rate", "message": f"retry after {verdict.retry_after_s}s"}],
            headers=verdict.headers(),
        )
    return record


def has_credentials(request: Request) -> bool:
    """A key, or at least a browser origin that a public site might allow."""
    return KEY_HEADER in request.headers or "origin" in request.headers


def key_required() -> APIError:
    return APIError(401, "an API key is required", [_key_detail()])


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

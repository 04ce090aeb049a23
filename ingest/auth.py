"""Who may write where: API keys, public sites from allowed origins, or open mode.

A request is admitted before its body is read (its key verified, or in key mode at
least an Origin that some public site allows) and charged to its client IP; the
buckets of a key or a public site are charged only once that key or origin is
verified, so nobody can drain another caller's bucket. On a public site each visitor
address has its own bucket too, so one address takes only a small share of the site's.
Failed authentications (a wrong key here, a wrong admin token anywhere: FailedAttempts)
are charged to the client's address and logged.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from foundation.errors import REDIS_ERRORS
from foundation.http import APIError, client_ip
from foundation.settings import Settings
from ingest.ratelimit import Bucket, Check, Outcome, RateLimiter, Verdict
from ingest.visitors import DailySalts, address_tag
from schemas.event import EventIn
from sites.access import KEY_HEADER, AccessState
from sites.cache import SiteCache
from sites.model import Site, claim_of, key_from_json, site_from_json


class AdmissionState(AccessState):
    """What admission reads from the app's lifespan state."""

    rate_limiter: RateLimiter
    salts: DailySalts


AdmissionT = TypeVar("AdmissionT", bound=AdmissionState)
PREFLIGHT_MAX_AGE_S = "86400"
_UNLIMITED = Verdict(allowed=True, limit=0, remaining=0, retry_after_s=0)
# A site's own public rate (`public_rate_limit_per_s`) allows a burst of this many
# seconds' worth, as the deployment's defaults do (1000/s, 2000).
OWN_RATE_BURST_S = 2
FAILURES_BUCKET = "auth-failures"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """An admitted writer.

    `site_id` is the site its key fixes (None: any site, in open mode, or the one its
    events name, for a browser on a public site's origin: `public` is True then).
    """

    site_id: str | None
    cors_origin: str | None
    public: bool = False


# Open mode: any site, from any origin.
_ANYONE = Caller(None, "*")


async def admit(request: Request[AdmissionT]) -> Caller:
    """Before the body is read: verify the key (401), charge the IP and the key (429).

    In key mode without a key, only an Origin allowed by some public site gets past.
    """
    settings = request.state["settings"]
    api_key = request.headers.get(KEY_HEADER)
    if api_key is None and settings.ingest_auth == "open":
        if settings.rate_limit_ip_per_s > 0 and settings.rate_limit_ip_burst > 0:
            await _charge(request)
        return _ANYONE
    cache = request.state["site_cache"]
    origin = request.headers.get("origin")
    if api_key is not None:
        return await _admit_key(request, cache, api_key, origin)
    if origin is None:
        await _charge(request)
        raise key_required()
    outcome = await _charge(request, check=Check("origin", cache.origins_set, origin))
    if not outcome.verified:
        raise key_required()
    return Caller(None, origin, public=True)


async def _admit_key(
    request: Request[AdmissionT], cache: SiteCache, api_key: str, origin: str | None
) -> Caller:
    claim = claim_of(api_key)
    if claim is None:
        await _charge(request, check=Check.given(False), failures=True)
        log_failure(request, KEY_HEADER)
        raise _invalid_key()
    bucket = _caller_bucket(request, f"key:{claim.key_id}")
    outcome = await _charge(
        request, [bucket], Check("key", cache.keys_hash, claim.key_id, claim.proof), failures=True
    )
    # The script checked the key by the registry's rules (sites/cache.py).
    key = key_from_json(outcome.record) if outcome.verified and outcome.record else None
    if key is None:
        if not outcome.genuine:  # a revoked or expired key is not logged at every request
            log_failure(request, KEY_HEADER)
        raise _invalid_key()
    if key.read_only:
        raise APIError(
            403,
            "a share token reads stats only; send events with the site's API key",
            [_key_detail()],
        )
    site = await cache.site(key.site_id) if origin else None
    allowed = origin if site and origin in site.allowed_origins else None
    return Caller(key.site_id, allowed)


async def authorize(
    request: Request[AdmissionT], caller: Caller, events: Sequence[EventIn]
) -> Caller:
    """After the body is read: each event's site must be the caller's (403), and a
    browser's events must name one public site that allows its origin (401)."""
    if caller.site_id is not None:
        wrong = [i for i, e in enumerate(events) if e.site_id not in (None, caller.site_id)]
        if wrong:
            detail = {"field": "site_id", "message": f"this key writes to {caller.site_id}"}
            raise APIError(
                403, "site_id does not match the API key's site", [{**detail, "index": wrong[0]}]
            )
        return caller
    if not caller.public:
        return caller
    site_ids = {event.site_id for event in events}
    site_id = next(iter(site_ids)) if len(site_ids) == 1 else None
    if site_id is None or caller.cors_origin is None:
        raise key_required()
    cache = request.state["site_cache"]
    buckets = _public_buckets(request, await cache.site(site_id), site_id, await _address(request))
    check = Check("site", cache.sites_hash, site_id, caller.cors_origin)
    outcome = await _charge(request, buckets, check, ip=False)
    site = site_from_json(outcome.record) if outcome.verified and outcome.record else None
    if site is None:
        raise key_required()
    return Caller(site.site_id, caller.cors_origin)


def _caller_bucket(request: Request[AdmissionT], name: str) -> Bucket:
    """The bucket of an API key, charged only once it is verified."""
    settings = request.state["settings"]
    return Bucket(name, settings.rate_limit_key_per_s, settings.rate_limit_key_burst, gated=True)


def _public_buckets(
    request: Request[AdmissionT], site: Site | None, site_id: str, address: str
) -> list[Bucket]:
    """A public site's bucket (its own rate if its owner set one, else the deployment's)
    and the visitor address's bucket on it (never more than the site's), both charged
    only once the origin is verified. One script checks both before taking from either,
    so an address refused at its own bucket leaves the site's whole."""
    settings = request.state["settings"]
    own = site.public_rate_limit_per_s if site else 0
    if own > 0:
        rate, burst = own, max(1, math.ceil(own * OWN_RATE_BURST_S))
    else:
        rate, burst = settings.rate_limit_key_per_s, settings.rate_limit_key_burst
    site_bucket = Bucket(f"site:{site_id}", rate, burst, gated=True)
    ip_rate, ip_burst = settings.rate_limit_public_ip_per_s, settings.rate_limit_public_ip_burst
    if site_bucket.live:
        ip_rate, ip_burst = min(ip_rate, rate), min(ip_burst, burst)
    return [Bucket(f"site:{site_id}:ip:{address}", ip_rate, ip_burst, gated=True), site_bucket]


async def _address(request: Request[AdmissionT]) -> str:
    return await _address_with(request.state["salts"], request)


async def _address_with(salts: DailySalts, request: Request[Any]) -> str:
    """What buckets are named by instead of the client's IP (ingest/visitors.py): an
    IPv6 client by its /64, which one subscriber holds whole (it could take a new address
    for every request)."""
    return address_tag(await salts.today(), bucket_address(client_ip(request)))


def bucket_address(ip: str) -> str:
    """The address a client's buckets are charged to: an IPv4 address, an IPv6 /64."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(parsed, ipaddress.IPv4Address):
        return ip
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return f"{ipaddress.IPv6Network((parsed, 64), strict=False).network_address}/64"


def failures_bucket(settings: Settings, address: str, keyed: bool) -> Bucket:
    """An address's failed authentications, charged on failure: checked on every attempt,
    or for keys (`keyed`) only on a failure (Bucket)."""
    rate, burst = settings.rate_limit_auth_failures_per_s, settings.rate_limit_auth_failures_burst
    return Bucket(f"{FAILURES_BUCKET}:{address}", rate, burst, failures=True, keyed=keyed)


async def _charge(
    request: Request[AdmissionT],
    caller_buckets: Sequence[Bucket] = (),
    check: Check | None = None,
    ip: bool = True,
    failures: bool = False,
) -> Outcome:
    """Charge the client IP (unless `ip` is False), the caller's buckets (as each says:
    gated ones once verified), and with `failures` the address's failed
    authentications unless verified; 429."""
    settings = request.state["settings"]
    address = await _address(request)
    buckets = list(caller_buckets)
    if ip:
        ip_rate, ip_burst = settings.rate_limit_ip_per_s, settings.rate_limit_ip_burst
        buckets.insert(0, Bucket(f"ip:{address}", ip_rate, ip_burst))
    if failures:
        buckets.append(failures_bucket(settings, address, keyed=True))
    if check is None and not any(b.live for b in buckets):
        return Outcome(True, _UNLIMITED, None)  # nothing to verify or take: no round trip
    outcome: Outcome = await request.state["rate_limiter"].check(buckets, check)
    if not outcome.verdict.allowed:
        raise too_many(outcome.verdict, KEY_HEADER)
    return outcome


def too_many(verdict: Verdict, field: str) -> APIError:
    """The 429 of a refusal: over a rate, or too many failed authentications (`field`
    names the credential)."""
    retry = f"retry after {verdict.retry_after_s}s"
    if verdict.limited_by is not None and verdict.limited_by.failures:
        error = "too many failed authentications from this address, retry later"
    else:
        error, field = "rate limit exceeded, retry later", "rate"
    return APIError(429, error, [{"field": field, "message": retry}], headers=verdict.headers())


def log_failure(request: Request[Any], credential: str) -> None:
    """One line per failed authentication, for the operator (and fail2ban): the route and
    the client's address, never what was sent. The failures limit bounds their number."""
    route = getattr(request.scope.get("route"), "path", None) or "unmatched"
    log.warning(
        "failed authentication (%s) on %s %s from %s",
        credential, request.method, route, client_ip(request),
    )  # fmt: skip


class FailedAttempts:
    """Admin tokens (and keys) checked outside ingest, charged to the client's address
    when wrong (sites/access.py calls `settle` with the outcome of its check)."""

    def __init__(self, limiter: RateLimiter, salts: DailySalts, settings: Settings) -> None:
        self._limiter = limiter
        self._salts = salts
        self._settings = settings

    async def settle(
        self, request: Request[Any], verified: bool, credential: str, keyed: bool = False
    ) -> None:
        """429 while the address is over its failures, right credential or not (for a
        key, `keyed`, only when it is wrong); a failure is charged and logged."""
        address = await _address_with(self._salts, request)
        bucket = failures_bucket(self._settings, address, keyed)
        if bucket.live:
            outcome = await self._limiter.check([bucket], Check.given(verified))
            if not outcome.verdict.allowed:
                raise too_many(outcome.verdict, credential)
        if not verified:
            log_failure(request, credential)


def key_required() -> APIError:
    return APIError(401, "an API key is required", [_key_detail()])


def _invalid_key() -> APIError:
    return APIError(401, "invalid, expired or revoked API key", [_key_detail()])


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


async def error_cors_headers(request: Request[AdmissionT]) -> dict[str, str]:
    """CORS headers for a refusal: any origin in open mode; in key mode an origin some
    public site allows (a refusal tells it nothing about which)."""
    origin = request.headers.get("origin")
    if origin is None:
        return {}
    if request.state["settings"].ingest_auth == "open":
        return cors_headers("*")
    try:
        allowed = await request.state["site_cache"].origin_allowed_somewhere(origin)
    except REDIS_ERRORS:
        return {}
    return cors_headers(origin) if allowed else {}


async def preflight(request: Request[AdmissionT]) -> Response:
    """CORS preflight for POST /event(s): any origin in open mode, allowed ones otherwise."""
    origin = request.headers.get("origin")
    if request.state["settings"].ingest_auth == "open":
        allowed: str | None = "*"
    elif origin and await request.state["site_cache"].origin_allowed_somewhere(origin):
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

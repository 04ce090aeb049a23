"""Refused credentials: a client's failed authentications (a wrong key at ingest, a
wrong admin token anywhere: FailedAttempts) charged to its address and logged, and the
answers a refused credential gets (401, 429).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

from foundation.http import APIError, client_ip
from foundation.settings import Settings
from ingest.ratelimit import Bucket, Check, RateLimiter, Verdict
from ingest.visitors import DailySalts, address_of
from sites.access import KEY_HEADER

FAILURES_BUCKET = "auth-failures"

log = logging.getLogger(__name__)


def failures_bucket(settings: Settings, address: str, keyed: bool) -> Bucket:
    """An address's failed authentications, charged on failure: checked on every attempt,
    or for keys (`keyed`) only on a failure (Bucket)."""
    rate, burst = settings.rate_limit_auth_failures_per_s, settings.rate_limit_auth_failures_burst
    return Bucket(f"{FAILURES_BUCKET}:{address}", rate, burst, failures=True, keyed=keyed)


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
        address = await address_of(self._salts, client_ip(request))
        bucket = failures_bucket(self._settings, address, keyed)
        if bucket.live:
            outcome = await self._limiter.check([bucket], Check.given(verified))
            if not outcome.verdict.allowed:
                raise too_many(outcome.verdict, credential)
        if not verified:
            log_failure(request, credential)


def key_required() -> APIError:
    return APIError(401, "an API key is required", [key_detail()])


def invalid_key() -> APIError:
    return APIError(401, "invalid, expired or revoked API key", [key_detail()])


def key_detail() -> dict[str, str]:
    return {
        "field": KEY_HEADER,
        "message": f"send the site's key in {KEY_HEADER} (public sites: from an allowed origin)",
    }

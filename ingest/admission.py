"""One request's admission: who the client is (its address, its API key or the public
site its Origin speaks for), its rate-limit buckets charged, and what the route needs
(the site its events go to and the CORS headers of the answer), or a refusal.

A request is admitted in two steps, as it arrives. Before its body is read (`admit`):
its key verified, or in key mode at least an Origin that some public site allows (no
Origin at all, a server's request, only while some public site accepts server events),
and the request charged to its client IP. Once its events are read
(`Admission.grant`): each event's site checked against the key's, or the public site
its events name verified against the Origin (or its opt-in to server events). The
buckets of a key or a public site are charged only once that key or origin is
verified, so nobody can drain another caller's bucket. On a public site each visitor
address has its own bucket too, so one address takes only a small share of the
site's. A wrong key is charged to the address's failed authentications (ingest/auth.py)
and logged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from foundation.http import APIError, client_ip, header
from ingest import bodies
from ingest.auth import (
    failures_bucket,
    invalid_key,
    key_detail,
    key_required,
    log_failure,
    too_many,
)
from ingest.cors import cors_headers
from ingest.ratelimit import Bucket, Check, Outcome, RateLimiter, Verdict
from ingest.visitors import DailySalts, address_of
from schemas.event import EventIn
from sites.access import KEY_HEADER, AccessState
from sites.model import NO_ORIGIN, Site, claim_of, key_from_json, site_from_json


class AdmissionState(AccessState):
    """What admission reads from the app's lifespan state."""

    rate_limiter: RateLimiter
    salts: DailySalts


AdmissionT = TypeVar("AdmissionT", bound=AdmissionState)
_UNLIMITED = Verdict(allowed=True, limit=0, remaining=0, retry_after_s=0)
# A site's own public rate (`public_rate_limit_per_s`) allows a burst of this many
# seconds' worth, as the deployment's defaults do (1000/s, 2000).
OWN_RATE_BURST_S = 2


@dataclass(frozen=True)
class Grant:
    """What an admitted request stores: its events (Plausible's domains read as their
    sites), the site its key or public site fixes (None: each event names its own), the
    client's IP (in memory only) and the CORS headers of the answer."""

    events: Sequence[EventIn]
    site_id: str | None
    ip: str
    headers: dict[str, str]


async def admit(request: Request[AdmissionT]) -> Admission:
    """Before the body is read: verify the key (401, 403), charge the IP and the key
    (429). In key mode without a key, only an Origin allowed by some public site (or no
    Origin, while some public site accepts server events) gets past; in open mode
    anyone does, from any origin."""
    admission = Admission(request)
    api_key = header(request, KEY_HEADER)
    if api_key is not None:
        await admission._verify_key(api_key)
    elif admission.settings.ingest_auth == "open":
        await admission._open_to_anyone()
    else:
        await admission._verify_origin()
    return admission


class Admission:
    """An admitted writer. `site_id` is the site its key fixes (None: any site, in open
    mode, or the one its events name, for a browser on a public site's origin or a
    server without an Origin: `public` is True then); `cors_origin` the origin its
    answers are readable from."""

    def __init__(self, request: Request[AdmissionT]) -> None:
        self.request: Request[Any] = request
        self.settings = request.state["settings"]
        self.cache = request.state["site_cache"]
        self.limiter = request.state["rate_limiter"]
        self.salts = request.state["salts"]
        self.ip = client_ip(request)
        self.origin = header(request, "origin") or None  # an empty one is none
        self.site_id: str | None = None
        self.cors_origin: str | None = None
        self.public = False
        self._address: str | None = None

    @property
    def max_batch(self) -> int:
        """The most events one request may send. A browser's tracker sends an event or a
        few at a time; without a key, a batch of hundreds is a flood riding on one
        request's charge."""
        limit = self.settings.max_batch_events
        return min(limit, self.settings.max_public_batch_events) if self.public else limit

    async def _open_to_anyone(self) -> None:
        """Open mode without a key: any site, from any origin; the IP charged if limited."""
        if self.settings.rate_limit_ip_per_s > 0 and self.settings.rate_limit_ip_burst > 0:
            await self._charge()
        self.cors_origin = "*"

    async def _verify_origin(self) -> None:
        """Key mode without a key: only an Origin some public site allows gets past, or no
        Origin while some public site accepts server events (401); the IP is charged
        either way. A server's answers carry no CORS headers."""
        origin = self.origin or NO_ORIGIN
        outcome = await self._charge(check=Check("origin", self.cache.origins_set, origin))
        if not outcome.verified:
            raise key_required()
        self.cors_origin, self.public = self.origin, True

    async def _verify_key(self, api_key: str) -> None:
        """With a key: its site fixed once the key is verified and its bucket charged
        (401, 403, 429); an Origin the site allows may read the answers."""
        claim = claim_of(api_key)
        if claim is None:
            await self._charge(check=Check.given(False), failures=True)
            log_failure(self.request, KEY_HEADER)
            raise invalid_key()
        check = Check("key", self.cache.keys_hash, claim.key_id, claim.proof)
        outcome = await self._charge([self._key_bucket(claim.key_id)], check, failures=True)
        # The script checked the key by the registry's rules (sites/lua/key_rules.lua).
        key = key_from_json(outcome.record) if outcome.verified and outcome.record else None
        if key is None:
            if not outcome.genuine:  # a revoked or expired key is not logged at every request
                log_failure(self.request, KEY_HEADER)
            raise invalid_key()
        if key.read_only:
            raise APIError(
                403,
                "a share token reads stats only; send events with the site's API key",
                [key_detail()],
            )
        site = await self.cache.site(key.site_id) if self.origin else None
        self.site_id = key.site_id
        self.cors_origin = self.origin if site and self.origin in site.allowed_origins else None

    async def grant(self, events: Sequence[EventIn], shaped: Sequence[bool], batch: bool) -> Grant:
        """Once the events are read: Plausible's domains (`shaped` events) read as their
        sites, each event's site checked (403: not the key's; 401: a browser's events
        must name one public site that allows its origin, whose buckets are charged;
        400: in open mode each event must name its site)."""
        if any(shaped):
            events = await self._sites_of_domains(events, shaped)
        site_id = await self._site_of(events)
        if site_id is None:
            bodies.require_site(events, batch)
        return Grant(events, site_id, self.ip, cors_headers(self.cors_origin))

    async def _sites_of_domains(
        self, events: Sequence[EventIn], shaped: Sequence[bool]
    ) -> list[EventIn]:
        """Plausible's `domain` names a site by one of its domains (the site that lists
        it), else by its id."""
        named = {e.site_id for e, is_plausible in zip(events, shaped, strict=True) if is_plausible}
        sites = {domain: await self.cache.site_for_domain(domain) for domain in named if domain}
        resolved = []
        for event, is_plausible in zip(events, shaped, strict=True):
            site_id = sites.get(event.site_id or "") if is_plausible else None
            resolved.append(event.model_copy(update={"site_id": site_id}) if site_id else event)
        return resolved

    async def _site_of(self, events: Sequence[EventIn]) -> str | None:
        """The site the events go to: the key's, the public site they name, or (open
        mode) None: each event's own."""
        if self.site_id is not None:
            wrong = [i for i, e in enumerate(events) if e.site_id not in (None, self.site_id)]
            if wrong:
                detail = {"field": "site_id", "message": f"this key writes to {self.site_id}"}
                error = "site_id does not match the API key's site"
                raise APIError(403, error, [{**detail, "index": wrong[0]}])
            return self.site_id
        return await self._public_site(events) if self.public else None

    async def _public_site(self, events: Sequence[EventIn]) -> str:
        """The one public site a browser's events name, verified against its origin (a
        server's: the site accepts server events) (401) and charged: the site's bucket
        and the address's on it (429)."""
        site_ids = {event.site_id for event in events}
        site_id = next(iter(site_ids)) if len(site_ids) == 1 else None
        if site_id is None:
            raise key_required()
        own = await self.cache.site(site_id)
        buckets = self._public_buckets(own, site_id, await self._address_tag())
        check = Check("site", self.cache.sites_hash, site_id, self.origin or NO_ORIGIN)
        outcome = await self._charge(buckets, check, ip=False)
        site = site_from_json(outcome.record) if outcome.verified and outcome.record else None
        if site is None:
            raise key_required()
        return site.site_id

    def _key_bucket(self, key_id: str) -> Bucket:
        """The bucket of an API key, charged only once it is verified."""
        rate, burst = self.settings.rate_limit_key_per_s, self.settings.rate_limit_key_burst
        return Bucket(f"key:{key_id}", rate, burst, gated=True)

    def _public_buckets(self, site: Site | None, site_id: str, address: str) -> list[Bucket]:
        """A public site's bucket (its own rate if its owner set one, else the deployment's)
        and the visitor address's bucket on it (never more than the site's), both charged
        only once the origin is verified. One script checks both before taking from either,
        so an address refused at its own bucket leaves the site's whole."""
        settings = self.settings
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

    async def _address_tag(self) -> str:
        """The client's address as buckets name it (ingest/visitors.py), computed once."""
        if self._address is None:
            self._address = await address_of(self.salts, self.ip)
        return self._address

    async def _charge(
        self,
        caller_buckets: Sequence[Bucket] = (),
        check: Check | None = None,
        ip: bool = True,
        failures: bool = False,
    ) -> Outcome:
        """Charge the client IP (unless `ip` is False), the caller's buckets (as each says:
        gated ones once verified), and with `failures` the address's failed
        authentications unless verified; 429."""
        address = await self._address_tag()
        buckets = list(caller_buckets)
        if ip:
            rate, burst = self.settings.rate_limit_ip_per_s, self.settings.rate_limit_ip_burst
            buckets.insert(0, Bucket(f"ip:{address}", rate, burst))
        if failures:
            buckets.append(failures_bucket(self.settings, address, keyed=True))
        if check is None and not any(b.live for b in buckets):
            return Outcome(True, _UNLIMITED, None)  # nothing to verify or take: no round trip
        outcome: Outcome = await self.limiter.check(buckets, check)
        if not outcome.verdict.allowed:
            raise too_many(outcome.verdict, KEY_HEADER)
        return outcome

"""Token buckets in Redis, checked and taken atomically for each request, the requests
of a moment together in one script call (a group commit)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from foundation import lua
from foundation.clients import RedisClient
from foundation.groupcommit import GroupCommit
from foundation.keys import RedisKeys
from foundation.scriptcall import run_script
from sites.cache import KEY_RULES, REDIS_CLOCK, SITE_RULES

# Verifies the caller and charges its buckets in one round trip (the whole contract is
# in the script's header).
GATED_BUCKETS = lua.load("ingest", "gated_buckets", needs=(REDIS_CLOCK, KEY_RULES, SITE_RULES))


@dataclass(frozen=True)
class Bucket:
    """A named bucket refilled at `rate` tokens per second up to `burst`."""

    name: str
    rate: float
    burst: int
    gated: bool = False  # charged only once the caller is verified
    # Charged only when the caller is not verified; checked on every attempt (an admin
    # token: the right one is refused too while the address is over, no oracle), or with
    # `keyed` only on a failure (a key's 256 random bits need no such care, and a right
    # key behind a NAT a guesser shares must keep working).
    failures: bool = False
    keyed: bool = False

    @property
    def mode(self) -> int:
        """The script's mode of this bucket (GATED_BUCKETS)."""
        if self.failures:
            return 3 if self.keyed else 2
        return int(self.gated)

    @property
    def live(self) -> bool:
        """False when the limit is turned off (a rate or burst of 0)."""
        return self.rate > 0 and self.burst > 0


@dataclass(frozen=True)
class Verdict:
    """The outcome, with what the RateLimit-* and Retry-After headers report."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int
    limited_by: Bucket | None = None  # the bucket that refused, when one did

    def headers(self) -> dict[str, str]:
        return {
            "Retry-After": str(self.retry_after_s),
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.retry_after_s),
        }


@dataclass(frozen=True)
class Check:
    """Who the caller claims to be, verified in the same round trip as the charge.

    kind 'key': `field` (a key id) of hash `key` must hold a record whose key_hash is
    `proof` and that is active; 'site': `field` (a site id) must be a public site whose
    allowed origins include `proof`; 'origin': `field` must be in the set `key`;
    'given': the caller checked it (`field` '1' or '0'; see `given`).
    """

    kind: str
    key: str
    field: str
    proof: str = ""

    @classmethod
    def given(cls, verified: bool) -> Check:
        """A credential checked before the script (an admin token, a malformed key)."""
        return cls("given", "", "1" if verified else "0")


@dataclass(frozen=True)
class Outcome:
    """Whether the caller was verified, the rate verdict, the record looked up, and
    whether the credential was genuine (False: a failed authentication, charged)."""

    verified: bool
    verdict: Verdict
    record: bytes | None
    genuine: bool = True


class RateLimiter:
    """Checks a request against its buckets (per client IP, per API key or public site, per
    visitor address on a public site, and per address's failed authentications)."""

    def __init__(self, redis: RedisClient, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._script = redis.register_script(GATED_BUCKETS)
        self._calls: GroupCommit[_Call, list[Any]] = GroupCommit(self._run, lambda _: None)

    async def check(self, buckets: Sequence[Bucket], check: Check | None = None) -> Outcome:
        """Verify `check` (if any) and charge the buckets it allows, atomically."""
        live = [b for b in buckets if b.live]
        args: list[str | float | int] = (
            [check.kind, check.field, check.proof] if check else ["", "", ""]
        )
        for bucket in live:
            args += [bucket.rate, bucket.burst, bucket.mode]
        hash_key = check.key if check and check.key else self._keys.rate_limit("none")
        keys = [hash_key, *[self._keys.rate_limit(b.name) for b in live]]
        reply = await self._calls.submit(_Call(keys, args))
        verified, allowed, retry_ms, remaining, limiting, record, genuine = reply
        limited_by = live[int(limiting) - 1] if live else None
        verdict = Verdict(
            allowed=bool(allowed),
            limit=limited_by.burst if limited_by else 0,
            remaining=int(remaining),
            retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0,
            limited_by=limited_by if not allowed else None,
        )
        return Outcome(bool(verified), verdict, record or None, bool(genuine))

    async def _run(self, calls: Sequence[_Call]) -> list[list[Any]]:
        """One script call checks every waiting request, each in turn (GATED_BUCKETS)."""
        counts: list[int] = []
        keys: list[str] = []
        args: list[str | float | int] = []
        for call in calls:
            counts += [len(call.keys), len(call.args)]
            keys += call.keys
            args += call.args
        replies: list[list[Any]] = await run_script(
            self._script, keys, [len(calls), *counts, *args]
        )
        return replies


@dataclass(frozen=True)
class _Call:
    """One request's keys and arguments for GATED_BUCKETS."""

    keys: list[str]
    args: list[str | float | int]

"""Token buckets in Redis, checked and taken in one atomic script per request."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from foundation.clients import RedisClient
from foundation.keys import RedisKeys
from sites.cache import RULES

# One round trip checks who the caller is and charges its buckets: a bucket of the
# caller itself (its API key, its public site) is charged only once the caller is
# verified (by the registry's rules, sites/cache.py), so a wrong secret or a disallowed
# origin cannot drain a victim's bucket; a bucket of failed authentications is checked
# on every attempt but charged only when the caller is not verified, so a legitimate
# caller's successes cost nothing and an address over its failures is refused even
# with the right secret (no oracle for a guesser);
# every request, verified or not, is charged to its client IP.
#
# KEYS[1]: where the check looks (the registry's keys or sites hash, or the set of
# allowed origins); KEYS[2..]: the buckets. ARGV[1]: the check ('' none, 'key', 'site',
# 'origin', or 'given': verified by the caller, ARGV[2] '1' or '0'), ARGV[2]: the field
# to look up, ARGV[3]: the proof (SHA-256 of the key's secret, or the request's Origin);
# then per bucket: rate, burst, mode ('0' always charged, '1' charged only when
# verified, '2' checked always, charged only on a failed authentication: a key whose
# secret does not match, or 'given' '0'; a revoked or expired key's genuine secret is
# no guess; '3' as '2', but checked only on a failed authentication: a right key is
# never refused for others' guesses from its address, a shared NAT's). The request passes if
# every checked bucket holds a token; then one is taken from each charged one (a bucket
# nothing is taken from is not written: its level follows from its last state). Redis's
# own clock is used, so every replica sees one time.
GATED_BUCKETS = (
    RULES
    + """
local kind, field, proof = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local verified, record = 1, false
local genuine = 1  -- 0: a failed authentication (a guess), charged to mode '2' buckets
if kind == 'key' or kind == 'site' then
  record = redis.call('HGET', KEYS[1], field)
  verified = 0
  if record then
    local valid
    if kind == 'key' then valid = key_is_valid(record, proof, now)
    else valid = site_admits(record, proof) end
    if valid then verified = 1 end
  end
  if kind == 'key' then
    genuine = (record and key_is_genuine(record, proof)) and 1 or 0
  end
elseif kind == 'origin' then
  verified = redis.call('SISMEMBER', KEYS[1], field)
elseif kind == 'given' then
  verified = (field == '1') and 1 or 0
  genuine = verified
end
local allowed, retry_ms, remaining, limiting = 1, 0, -1, 1
local checked, tokens, takes = {}, {}, {}
for i = 2, #KEYS do
  local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local mode = ARGV[3 * i]
  if (mode ~= '1' or verified == 1) and (mode ~= '3' or genuine == 0) then
    local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
    local level = tonumber(state[1]) or burst
    local since = now - (tonumber(state[2]) or now)
    level = math.min(burst, level + since * rate / 1000)
    tokens[i] = level
    takes[i] = ((mode ~= '2' and mode ~= '3') or genuine == 0) and 1 or 0
    checked[#checked + 1] = i
    if level < 1 then
      allowed = 0
      local wait = math.ceil((1 - level) * 1000 / rate)
      if wait > retry_ms then retry_ms, limiting = wait, i - 1 end
    end
  end
end
for _, i in ipairs(checked) do
  local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local level = tokens[i] - allowed * takes[i]
  if allowed * takes[i] == 1 then
    redis.call('HSET', KEYS[i], 'tokens', tostring(level), 'ts', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(burst * 1000 / rate) + 1000)
  end
  if remaining < 0 or math.floor(level) < remaining then remaining = math.floor(level) end
end
return {verified, allowed, retry_ms, remaining, limiting, record, genuine}
"""
)


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

    async def check(self, buckets: Sequence[Bucket], check: Check | None = None) -> Outcome:
        """Verify `check` (if any) and charge the buckets it allows, atomically."""
        live = [b for b in buckets if b.live]
        args: list[str | float | int] = (
            [check.kind, check.field, check.proof] if check else ["", "", ""]
        )
        for bucket in live:
            args += [bucket.rate, bucket.burst, bucket.mode]
        hash_key = check.key if check and check.key else self._keys.rate_limit("none")
        verified, allowed, retry_ms, remaining, limiting, record, genuine = await self._script(
            keys=[hash_key, *[self._keys.rate_limit(b.name) for b in live]], args=args
        )
        limited_by = live[int(limiting) - 1] if live else None
        verdict = Verdict(
            allowed=bool(allowed),
            limit=limited_by.burst if limited_by else 0,
            remaining=int(remaining),
            retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0,
            limited_by=limited_by if not allowed else None,
        )
        return Outcome(bool(verified), verdict, record or None, bool(genuine))

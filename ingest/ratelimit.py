"""Token buckets in Redis, checked and taken in one atomic script per request."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from hitstream.keys import RedisKeys
from sites.cache import RULES

# One round trip checks who the caller is and charges its buckets: a bucket of the
# caller itself (its API key, its public site) is charged only once the caller is
# verified (by the registry's rules, sites/cache.py), so a wrong secret or a disallowed
# origin cannot drain a victim's bucket;
# every request, verified or not, is charged to its client IP.
#
# KEYS[1]: where the check looks (the registry's keys or sites hash, or the set of
# allowed origins); KEYS[2..]: the buckets. ARGV[1]: the check ('' none, 'key', 'site',
# 'origin'), ARGV[2]: the field to look up, ARGV[3]: the proof (SHA-256 of the key's
# secret, or the request's Origin); then per bucket: rate, burst, gated (1: charged
# only when verified). The request passes if every charged bucket holds a token; then
# one is taken from each. Redis's own clock is used, so every replica sees one time.
GATED_BUCKETS = (
    RULES
    + """
local kind, field, proof = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local verified, record = 1, false
if kind == 'key' or kind == 'site' then
  record = redis.call('HGET', KEYS[1], field)
  verified = 0
  if record then
    local valid
    if kind == 'key' then valid = key_is_valid(record, proof, now)
    else valid = site_admits(record, proof) end
    if valid then verified = 1 end
  end
elseif kind == 'origin' then
  verified = redis.call('SISMEMBER', KEYS[1], field)
end
local allowed, retry_ms, remaining, limiting = 1, 0, -1, 1
local charged, tokens = {}, {}
for i = 2, #KEYS do
  local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  if ARGV[3 * i] == '0' or verified == 1 then
    local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
    local level = tonumber(state[1]) or burst
    local since = now - (tonumber(state[2]) or now)
    level = math.min(burst, level + since * rate / 1000)
    tokens[i] = level
    charged[#charged + 1] = i
    if level < 1 then
      allowed = 0
      local wait = math.ceil((1 - level) * 1000 / rate)
      if wait > retry_ms then retry_ms, limiting = wait, i - 1 end
    end
  end
end
for _, i in ipairs(charged) do
  local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local level = tokens[i] - allowed
  redis.call('HSET', KEYS[i], 'tokens', tostring(level), 'ts', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst * 1000 / rate) + 1000)
  if remaining < 0 or math.floor(level) < remaining then remaining = math.floor(level) end
end
return {verified, allowed, retry_ms, remaining, limiting, record}
"""
)


@dataclass(frozen=True)
class Bucket:
    """A named bucket refilled at `rate` tokens per second up to `burst`."""

    name: str
    rate: float
    burst: int
    gated: bool = False  # charged only once the caller is verified

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
    allowed origins include `proof`; 'origin': `field` must be in the set `key`.
    """

    kind: str
    key: str
    field: str
    proof: str = ""


@dataclass(frozen=True)
class Outcome:
    """Whether the caller was verified, the rate verdict, and the record looked up."""

    verified: bool
    verdict: Verdict
    record: bytes | None


class RateLimiter:
    """Checks a request against its buckets (per client IP, per API key or public site)."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys) -> None:
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
            args += [bucket.rate, bucket.burst, int(bucket.gated)]
        hash_key = check.key if check else self._keys.rate_limit("none")
        verified, allowed, retry_ms, remaining, limiting, record = await self._script(
            keys=[hash_key, *[self._keys.rate_limit(b.name) for b in live]], args=args
        )
        verdict = Verdict(
            allowed=bool(allowed),
            limit=live[int(limiting) - 1].burst if live else 0,
            remaining=int(remaining),
            retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0,
        )
        return Outcome(bool(verified), verdict, record or None)

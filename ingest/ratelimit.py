"""Token buckets in Redis, checked and taken in one atomic script per request."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS[1]: a hash to look the caller up in (registry keys or sites); KEYS[2..]: the
# buckets. ARGV[1]: the field to look up ('' for none); then rate (tokens/s) and burst
# of each bucket, in order. The request passes only if every bucket holds a token;
# then one is taken from each. One round trip authenticates and limits a request.
# Redis's own clock is used, so every ingest replica sees the same time.
TOKEN_BUCKETS = """
local record = false
if ARGV[1] ~= '' then record = redis.call('HGET', KEYS[1], ARGV[1]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local allowed, retry_ms, remaining, limiting = 1, 0, -1, 1
local tokens = {}
for i = 2, #KEYS do
  local key = KEYS[i]
  local rate, burst = tonumber(ARGV[2 * i - 2]), tonumber(ARGV[2 * i - 1])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local level = tonumber(state[1]) or burst
  local since = now - (tonumber(state[2]) or now)
  level = math.min(burst, level + since * rate / 1000)
  tokens[i] = level
  if level < 1 then
    allowed = 0
    local wait = math.ceil((1 - level) * 1000 / rate)
    if wait > retry_ms then retry_ms, limiting = wait, i - 1 end
  end
end
for i = 2, #KEYS do
  local key = KEYS[i]
  local rate, burst = tonumber(ARGV[2 * i - 2]), tonumber(ARGV[2 * i - 1])
  local level = tokens[i] - allowed
  redis.call('HSET', key, 'tokens', tostring(level), 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
  if remaining < 0 or math.floor(level) < remaining then remaining = math.floor(level) end
end
return {allowed, retry_ms, remaining, limiting, record}
"""


@dataclass(frozen=True)
class Bucket:
    """A named bucket refilled at `rate` tokens per second up to `burst`."""

    name: str
    rate: float
    burst: int

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
class Lookup:
    """A registry record to fetch in the same round trip: `field` of hash `key`."""

    key: str
    field: str


class RateLimiter:
    """Checks a request against its buckets (per client IP, per API key or public site)."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:ratelimit:"
        self._script = redis.register_script(TOKEN_BUCKETS)

    async def check(
        self, buckets: Sequence[Bucket], lookup: Lookup | None = None
    ) -> tuple[Verdict, bytes | None]:
        """The verdict, and the looked-up record (None if absent or not asked for)."""
        live = [b for b in buckets if b.live]
        if not live:
            record = await self._redis.hget(lookup.key, lookup.field) if lookup else None
            return Verdict(True, 0, 0, 0), record  # type: ignore[return-value]
        args: list[str | float | int] = [lookup.field if lookup else ""]
        for bucket in live:
            args += [bucket.rate, bucket.burst]
        hash_key = lookup.key if lookup else self._prefix + "none"
        allowed, retry_ms, remaining, limiting, record = await self._script(
            keys=[hash_key, *[self._prefix + b.name for b in live]], args=args
        )
        verdict = Verdict(
            allowed=bool(allowed),
            limit=live[int(limiting) - 1].burst,
            remaining=int(remaining),
            retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0,
        )
        return verdict, record or None

"""Token buckets in Redis, checked and taken in one atomic script per request."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS: the buckets. ARGV: rate (tokens/s) and burst for each, in the same order.
# The request passes only if every bucket holds a token; then one is taken from each.
# Redis's own clock is used, so every ingest replica sees the same time.
TOKEN_BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local allowed, retry_ms, remaining, limiting = 1, 0, -1, 1
local tokens = {}
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local level = tonumber(state[1]) or burst
  local since = now - (tonumber(state[2]) or now)
  level = math.min(burst, level + since * rate / 1000)
  tokens[i] = level
  if level < 1 then
    allowed = 0
    local wait = math.ceil((1 - level) * 1000 / rate)
    if wait > retry_ms then retry_ms, limiting = wait, i end
  end
end
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local level = tokens[i] - allowed
  redis.call('HSET', key, 'tokens', tostring(level), 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
  if remaining < 0 or math.floor(level) < remaining then remaining = math.floor(level) end
end
return {allowed, retry_ms, remaining, limiting}
"""


@dataclass(frozen=True)
class Bucket:
    """A named bucket refilled at `rate` tokens per second up to `burst`."""

    name: str
    rate: float
    burst: int


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


class RateLimiter:
    """Checks a request against its buckets (per client IP, per API key or public site)."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._prefix = f"{prefix}:ratelimit:"
        self._script = redis.register_script(TOKEN_BUCKETS)

    async def check(self, buckets: Sequence[Bucket]) -> Verdict:
        live = [b for b in buckets if b.rate > 0 and b.burst > 0]
        if not live:
            return Verdict(True, 0, 0, 0)
        args: list[float | int] = []
        for bucket in live:
            args += [bucket.rate, bucket.burst]
        allowed, retry_ms, remaining, limiting = await self._script(
            keys=[self._prefix + b.name for b in live], args=args
        )
        return Verdict(
            allowed=bool(allowed),
            limit=live[int(limiting) - 1].burst,
            remaining=int(remaining),
            retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0,
        )

"""The Redis copy of the registry, read on every keyed request.

Ingest and the reporting auth check keys against this cache alone, so they keep
working while ClickHouse is away; any process holding a ClickHouse client rebuilds it
from ClickHouse when it is missing (Redis lost or flushed: sites/registry.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from foundation.clients import RedisClient
from foundation.keys import RedisKeys
from sites.model import (
    KEY_MERGE,
    ApiKey,
    Site,
    claim_of,
    key_from_json,
    site_from_json,
    to_json,
)

# The rules of the cached records, in Lua, for every script that checks a caller
# (the rate limiter's admission script includes them too): a key is genuine when its
# secret's hash matches (a revoked or expired key's holder is no guesser), and valid
# when genuine and neither revoked nor expired (by Redis's clock, in ms); a public
# site admits browsers from its allowed origins.
RULES = """
local function key_is_genuine(record, proof)
  return cjson.decode(record).key_hash == proof
end
local function key_is_valid(record, proof, now)
  local r = cjson.decode(record)
  return key_is_genuine(record, proof) and not r.revoked
    and (r.expires_at == cjson.null or r.expires_at > now)
end
local function site_admits(record, origin)
  local r = cjson.decode(record)
  if not r.public then return false end
  for _, allowed in ipairs(r.allowed_origins) do
    if allowed == origin then return true end
  end
  return false
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS[1]: the keys hash; ARGV: key id, proof. The record if the key is valid, 1 if
# it is only genuine (revoked or expired), else false.
VERIFY_KEY = (
    RULES
    + """
local record = redis.call('HGET', KEYS[1], ARGV[1])
if record and key_is_valid(record, ARGV[2], now_ms()) then return record end
if record and key_is_genuine(record, ARGV[2]) then return 1 end
return false
"""
)

# KEYS[1]: the keys hash; ARGV[1]: sites/model.py's KEY_MERGE as JSON (field -> 'any' |
# 'earliest'), then (key id, record) pairs. Each record is merged with the cached one
# by that rule (ClickHouse's KEYS query merges rows by the same), then stored.
MERGE_KEYS = """
local rules = cjson.decode(ARGV[1])
local function set(value)
  if value == nil or value == cjson.null then return nil end
  return value
end
local function merged(how, old, new)
  if how == 'any' then return old == true or new == true end
  if how ~= 'earliest' then error('unknown merge rule: ' .. tostring(how)) end
  old, new = set(old), set(new)
  if old == nil then return new or cjson.null end
  if new == nil or old < new then return old end
  return new
end
for i = 2, #ARGV, 2 do
  local field, record = ARGV[i], ARGV[i + 1]
  local cached = redis.call('HGET', KEYS[1], field)
  if cached then
    local old, new = cjson.decode(cached), cjson.decode(record)
    for name, how in pairs(rules) do
      new[name] = merged(how, old[name], new[name])
    end
    record = cjson.encode(new)
  end
  redis.call('HSET', KEYS[1], field, record)
end
return (#ARGV - 1) / 2
"""

MERGE_RULE = orjson.dumps(KEY_MERGE)


class SiteCache:
    """Sites, keys and the allowed origins of public sites, in Redis."""

    def __init__(self, redis: RedisClient, keys: RedisKeys) -> None:
        self._redis = redis
        self._merge_keys = redis.register_script(MERGE_KEYS)
        self._verify_key = redis.register_script(VERIFY_KEY)
        self.keys_hash = keys.api_keys
        self.sites_hash = keys.sites
        self.origins_set = keys.origins
        self.domains_hash = keys.domains
        self._loaded = keys.registry_loaded

    async def key(self, api_key: str) -> ApiKey | None:
        """The record of this plaintext key, if it is one of ours and valid now."""
        return (await self.check_key(api_key))[0]

    async def check_key(self, api_key: str) -> tuple[ApiKey | None, bool]:
        """The record of this plaintext key if it is valid now, and whether it is genuine
        (one of ours, maybe revoked or expired: not a guess)."""
        claim = claim_of(api_key)
        if claim is None:
            return None, False
        found = await self._verify_key(keys=[self.keys_hash], args=[claim.key_id, claim.proof])
        if isinstance(found, bytes | str):
            return key_from_json(found), True
        return None, bool(found)

    async def site(self, site_id: str) -> Site | None:
        raw = await self._redis.hget(self.sites_hash, site_id)
        return None if raw is None else site_from_json(raw)

    async def timezone(self, site_id: str) -> str:
        """The site's time zone; UTC for a site the registry does not know (open mode)."""
        site = await self.site(site_id)
        return site.timezone if site else "UTC"

    async def site_for_domain(self, domain: str) -> str | None:
        """The id of the site that lists `domain` among its domains, if one does."""
        site_id = await self._redis.hget(self.domains_hash, domain.lower())
        if site_id is None:
            return None
        return site_id.decode() if isinstance(site_id, bytes) else site_id

    async def origin_allowed_somewhere(self, origin: str) -> bool:
        """True if some public site allows this origin (for CORS preflight)."""
        return bool(await self._redis.sismember(self.origins_set, origin))

    async def put(self, sites: Sequence[Site] = (), keys: Sequence[ApiKey] = ()) -> None:
        """Write records; keys merge with what is cached (see MERGE_KEYS)."""
        if sites:
            mapping: dict[Any, Any] = {site.site_id: to_json(site) for site in sites}
            await self._redis.hset(self.sites_hash, mapping=mapping)
        if keys:
            args: list[Any] = [MERGE_RULE]
            for key in keys:
                args += [key.key_id, to_json(key)]
            await self._merge_keys(keys=[self.keys_hash], args=args)
        if sites:
            await self._refresh_indexes()

    async def _refresh_indexes(self) -> None:
        """The union of public sites' origins and the domain -> site map, recomputed
        after any site change (rare). Should two sites list one domain (the admin
        routes refuse it, but two admins may race), the older site keeps it."""
        every: dict[Any, Any] = await self._redis.hgetall(self.sites_hash)
        sites = sorted(map(site_from_json, every.values()), key=lambda s: s.created_at)
        origins = {origin for site in sites if site.public for origin in site.allowed_origins}
        domains: dict[str, str] = {}
        for site in sites:
            for domain in site.domains:
                domains.setdefault(domain, site.site_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.origins_set, self.domains_hash)
            if origins:
                pipe.sadd(self.origins_set, *origins)
            if domains:
                pipe.hset(self.domains_hash, mapping=domains)  # type: ignore[arg-type]
            await pipe.execute()

    async def loaded(self) -> bool:
        return bool(await self._redis.exists(self._loaded))

    async def replace_all(self, sites: Sequence[Site], keys: Sequence[ApiKey]) -> None:
        """Load a full copy (from ClickHouse) and mark the cache as loaded.

        Records are merged in, not swapped: a revocation cached while the copy was read
        from ClickHouse stays. Sites and keys are never deleted, only revoked.
        """
        await self.put(sites, keys)
        await self._redis.set(self._loaded, str(int(time.time())))

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
from redis.asyncio.lock import Lock

from foundation import lua
from foundation.clients import RedisClient
from foundation.keys import RedisKeys
from sites.goals import Goal, goal_from_json, goal_json
from sites.model import (
    KEY_MERGE,
    NO_ORIGIN,
    ApiKey,
    Site,
    claim_of,
    key_from_json,
    site_from_json,
    to_json,
)

# The scripts (sites/lua) and the rules they share with the rate limiter's admission
# script (ingest/lua/gated_buckets.lua): Redis's clock, a key's validity, a public
# site's origins.
REDIS_CLOCK = lua.load("sites", "redis_clock")
KEY_RULES = lua.load("sites", "key_rules")
SITE_RULES = lua.load("sites", "site_rules")
VERIFY_KEY = lua.load("sites", "verify_key", needs=(REDIS_CLOCK, KEY_RULES))
MERGE_KEYS = lua.load("sites", "merge_keys")

# MERGE_KEYS's first argument: the merge rule's owner is sites/model.py.
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
        self.websites_hash = keys.websites
        self._loaded = keys.registry_loaded
        self._goals_key = keys.goals
        self._goals_lock = keys.goals_lock

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

    async def site_for_website(self, website_id: str) -> str | None:
        """The id of the site whose website_id (Umami's `website`) this is, if one's is."""
        site_id = await self._redis.hget(self.websites_hash, website_id.lower())
        if site_id is None:
            return None
        return site_id.decode() if isinstance(site_id, bytes) else site_id

    async def resolve(self, name: str) -> str:
        """The id of the site `name` names: the site that lists it among its domains
        (Plausible's clients send a domain as `site_id`), else `name` itself (an id).
        The one rule for the Stats API v1 and v2 (reporting); ingest reads Plausible's
        `domain` the same way (ingest/admission.py)."""
        return await self.site_for_domain(name) or name

    async def goals(self, site_id: str) -> list[Goal]:
        """The site's live goals, oldest first."""
        every: dict[Any, Any] = await self._redis.hgetall(self._goals_key(site_id))
        goals = map(goal_from_json, every.values())
        return sorted(goals, key=lambda g: (g.created_at, g.goal_id))

    def goals_lock(self, site_id: str) -> Lock:
        """Held while one of the site's goals is checked against the others and written,
        by whichever process does it: Plausible's rules (one display name, a thousand
        goals, one currency an event) hold under concurrent requests. It expires on its
        own (a holder that died) and is waited for a few seconds at most."""
        return Lock(self._redis, self._goals_lock(site_id), timeout=30, blocking_timeout=10)

    async def put_goals(self, goals: Sequence[Goal]) -> None:
        """Write goals (a deleted one leaves the cache), each in its own field, so two
        writers of different goals never undo each other."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for goal in goals:
                key = self._goals_key(goal.site_id)
                if goal.deleted:
                    pipe.hdel(key, str(goal.goal_id))
                else:
                    pipe.hset(key, str(goal.goal_id), goal_json(goal))
            await pipe.execute()

    async def forget_site(self, site_id: str) -> None:
        """A deleted site: out of the cache with its goals (its keys are revoked)."""
        await self._redis.hdel(self.sites_hash, site_id)
        await self._redis.delete(self._goals_key(site_id))
        await self._refresh_indexes()

    async def origin_allowed_somewhere(self, origin: str) -> bool:
        """True if some public site allows this origin (for CORS preflight)."""
        return bool(origin) and bool(await self._redis.sismember(self.origins_set, origin))

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
        """The union of public sites' origins (NO_ORIGIN among them while one accepts
        server events) and the domain -> site and website_id -> site maps, recomputed
        after any site change (rare). Should two sites list one domain or website_id (the
        admin routes refuse it, but two admins may race), the older site keeps it."""
        every: dict[Any, Any] = await self._redis.hgetall(self.sites_hash)
        sites = sorted(map(site_from_json, every.values()), key=lambda s: s.created_at)
        origins = {origin for site in sites if site.public for origin in site.allowed_origins}
        if any(site.public and site.accept_server_events for site in sites):
            origins.add(NO_ORIGIN)
        domains: dict[str, str] = {}
        websites: dict[str, str] = {}
        for site in sites:
            for domain in site.domains:
                domains.setdefault(domain, site.site_id)
            websites.setdefault(site.website_id, site.site_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.origins_set, self.domains_hash, self.websites_hash)
            if origins:
                pipe.sadd(self.origins_set, *origins)
            if domains:
                pipe.hset(self.domains_hash, mapping=domains)  # type: ignore[arg-type]
            if websites:
                pipe.hset(self.websites_hash, mapping=websites)  # type: ignore[arg-type]
            await pipe.execute()

    async def loaded(self) -> bool:
        return bool(await self._redis.exists(self._loaded))

    async def replace_all(
        self, sites: Sequence[Site], keys: Sequence[ApiKey], goals: Sequence[Goal] = ()
    ) -> None:
        """Load a full copy (from ClickHouse) and mark the cache as loaded.

        Records are merged in, not swapped: a revocation cached while the copy was read
        from ClickHouse stays. Keys are never deleted, only revoked; goals deleted in
        ClickHouse leave the cache.
        """
        await self.put(sites, keys)
        await self.put_goals(goals)
        await self._redis.set(self._loaded, str(int(time.time())))

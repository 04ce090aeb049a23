"""Site and key administration: ClickHouse first (durable), then the Redis cache."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from anyio import CapacityLimiter, to_thread

from sites.cache import SiteCache
from sites.goals import Goal, find_or_add
from sites.model import ApiKey, Site, new_key
from sites.store import SiteStore

log = logging.getLogger(__name__)


class Registry:
    """Creates sites, rotates and revokes keys, and keeps the cache complete."""

    def __init__(self, store: SiteStore, cache: SiteCache) -> None:
        self._store = store
        self.cache = cache
        # Threads of its own: the cache rebuild must not wait behind other work's threads.
        self._threads = CapacityLimiter(2)

    async def create_site(self, site: Site) -> tuple[ApiKey, str]:
        key, plaintext = new_key(site.site_id)
        await self._write(sites=[site], keys=[key])
        return key, plaintext

    async def update_site(self, site: Site) -> None:
        await self._write(sites=[site])

    async def sites(self, site_id: str = "") -> list[tuple[Site, list[ApiKey]]]:
        """Every site (or only `site_id`) with its keys, oldest first."""
        sites, keys = await to_thread.run_sync(self._store.load, site_id, limiter=self._threads)
        by_site: dict[str, list[ApiKey]] = {}
        for key in keys:
            by_site.setdefault(key.site_id, []).append(key)
        return [
            (site, sorted(by_site.get(site.site_id, []), key=lambda k: k.created_at))
            for site in sites
        ]

    async def site(self, site_id: str) -> tuple[Site, list[ApiKey]] | None:
        return next(iter(await self.sites(site_id)), None) if site_id else None

    async def rotate(self, site_id: str, keys: list[ApiKey], grace_s: int) -> tuple[ApiKey, str]:
        """A new key; the site's active keys keep working for `grace_s` seconds more
        (its share tokens are not keys to rotate: each is revoked on its own)."""
        until = datetime.fromtimestamp(time.time() + grace_s, UTC)
        aging = [
            replace(k, expires_at=min(until, k.expires_at or until))
            for k in keys
            if k.active() and not k.read_only
        ]
        key, plaintext = new_key(site_id)
        await self._write(keys=[*aging, key])
        return key, plaintext

    async def share(self, site_id: str) -> tuple[ApiKey, str]:
        """A new share token: a read-only key of the site, for a shared link."""
        key, plaintext = new_key(site_id, read_only=True)
        await self._write(keys=[key])
        return key, plaintext

    async def revoke(self, key: ApiKey) -> None:
        """Revoked at once: the cache entry is replaced in the same request."""
        await self._write(keys=[replace(key, revoked=True)])

    async def delete_site(self, site: Site, keys: list[ApiKey]) -> None:
        """The site leaves the registry and the cache; its keys are revoked with it (its
        events stay until the raw retention drops them)."""
        revoked = [replace(k, revoked=True) for k in keys if not k.revoked]
        await to_thread.run_sync(self._store.insert, [site], revoked, True, limiter=self._threads)
        await self.cache.put(keys=revoked)
        await self.cache.forget_site(site.site_id)

    async def goals(self, site_id: str) -> list[Goal]:
        """The site's live goals (from ClickHouse), oldest first."""
        every = await to_thread.run_sync(self._store.load_goals, site_id, limiter=self._threads)
        return [goal for goal in every if not goal.deleted]

    async def goal(self, site_id: str, goal_id: str) -> Goal | None:
        """The site's live goal whose id reads `goal_id` (as a path or a body sends it)."""
        return next((g for g in await self.goals(site_id) if str(g.goal_id) == goal_id), None)

    async def holder(
        self, site_id: str, domains: Sequence[str] = (), website_id: str | None = None
    ) -> tuple[Site, str] | None:
        """Another site than `site_id` that already answers to one of `domains` or to
        `website_id`, with the name it holds (a domain or a website_id are one site's).
        A site's id names it as its domains do (SiteCache.resolve): a domain equal to
        another site's id, or an id equal to another site's domain, is taken too."""
        wanted = set(domains)
        for other, _ in await self.sites():
            if other.site_id == site_id:
                continue
            taken = sorted(wanted & {*other.domains, other.site_id})
            if taken:
                return other, taken[0]
            if site_id in other.domains:
                return other, site_id
            if website_id is not None and other.website_id == website_id:
                return other, website_id
        return None

    async def add_goal(self, wanted: Goal) -> tuple[Goal, bool]:
        """Plausible's find-or-create: the site's goal with the same target as it is (True),
        else `wanted` stored (False); sites/goals.py's GoalError for a broken rule."""
        async with self.cache.goals_lock(wanted.site_id):
            goal, found = find_or_add(await self.goals(wanted.site_id), wanted)
            if not found:
                await self._write_goals([goal])
        return goal, found

    async def delete_goal(self, goal: Goal) -> None:
        await self._write_goals([replace(goal, deleted=True)])

    async def _write_goals(self, goals: list[Goal]) -> None:
        await to_thread.run_sync(self._store.insert_goals, goals, limiter=self._threads)
        await self.cache.put_goals(goals)

    async def ensure_cached(self) -> bool:
        """Rebuild the Redis cache from ClickHouse if it is missing; True if rebuilt."""
        if await self.cache.loaded():
            return False
        sites, keys = await to_thread.run_sync(self._store.load, "", limiter=self._threads)
        goals = await to_thread.run_sync(self._store.load_goals, "", limiter=self._threads)
        live = {site.site_id for site in sites}
        await self.cache.replace_all(sites, keys, [g for g in goals if g.site_id in live])
        return True

    async def keep_cached(self, interval_s: float) -> None:
        """Rebuild the cache whenever Redis lost it (flushed, or a new server); run as a
        background task."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                if await self.ensure_cached():
                    log.warning("site registry cache was missing in Redis; rebuilt from ClickHouse")
            except Exception as exc:
                log.warning("site registry cache check failed: %s", exc)

    async def _write(self, sites: Sequence[Site] = (), keys: Sequence[ApiKey] = ()) -> None:
        await to_thread.run_sync(self._store.insert, sites, keys, limiter=self._threads)
        await self.cache.put(sites, keys)

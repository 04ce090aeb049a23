"""Sites and API keys: durable in ClickHouse, cached in Redis for the ingest hot path.

An API key reads `hs_<key_id>_<secret>`; only SHA-256(secret) is stored. Ingest and
the reporting auth check keys against the Redis cache alone, so they keep working
while ClickHouse is away; any process that holds a ClickHouse client rebuilds the
cache from ClickHouse when it is missing (Redis lost or flushed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from anyio import to_thread
from clickhouse_connect.driver.client import Client

KEY_PATTERN = re.compile(r"^hs_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")

SITE_COLUMNS = ["site_id", "name", "public", "allowed_origins", "created_at", "updated_at"]
KEY_COLUMNS = [
    "key_id", "site_id", "key_hash", "created_at", "expires_at", "revoked", "updated_at",
]  # fmt: skip
# Current state of every site and key (latest row of each, by updated_at).
# One site's, or (site_id '') every site's.
SITES = (
    "SELECT site_id, name, public, allowed_origins, created_at FROM sites FINAL"
    " WHERE {site_id:String} = '' OR site_id = {site_id:String}"
)
KEYS_TABLE = "api_key_states"
# Keys merge rather than replace: revocation is for good and an expiry only ever moves
# earlier, so concurrent writes (a rotation that read the key before a revocation) can
# never bring a revoked key back, whatever the order their rows land in.
KEYS = (
    "SELECT key_id, any(site_id), any(key_hash), min(created_at), min(expires_at),"
    f" max(revoked) FROM {KEYS_TABLE}"
    " WHERE {site_id:String} = '' OR site_id = {site_id:String} GROUP BY key_id"
)

# The same merge for the Redis copy, in one script: each new key record keeps the
# cached record's revocation and earlier expiry.
MERGE_KEYS = """
for i = 1, #ARGV, 2 do
  local field, record = ARGV[i], ARGV[i + 1]
  local cached = redis.call('HGET', KEYS[1], field)
  if cached then
    local old, new = cjson.decode(cached), cjson.decode(record)
    if old.revoked then new.revoked = true end
    if old.expires_at ~= cjson.null
        and (new.expires_at == cjson.null or old.expires_at < new.expires_at) then
      new.expires_at = old.expires_at
    end
    record = cjson.encode(new)
  end
  redis.call('HSET', KEYS[1], field, record)
end
return #ARGV / 2
"""


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Site:
    """A site; `public` sites accept events without a key from `allowed_origins`."""

    site_id: str
    name: str
    public: bool = False
    allowed_origins: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> list[object]:
        now = datetime.now(UTC)
        return [
            self.site_id,
            self.name,
            self.public,
            list(self.allowed_origins),
            self.created_at,
            now,
        ]


@dataclass(frozen=True)
class ApiKey:
    """One key of a site: valid until revoked or, after a rotation, until `expires_at`."""

    key_id: str
    site_id: str
    key_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked: bool = False

    def active(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return not self.revoked and (self.expires_at is None or self.expires_at > now)

    def row(self) -> list[object]:
        now = datetime.now(UTC)
        return [
            self.key_id, self.site_id, self.key_hash, self.created_at,
            self.expires_at, self.revoked, now,
        ]  # fmt: skip


def hash_secret(secret: str) -> str:
    """What is stored of a key: SHA-256 of its secret (keys are 256-bit random)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(site_id: str) -> tuple[ApiKey, str]:
    """A fresh key for `site_id` and its plaintext, which is shown once and never stored."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    record = ApiKey(key_id, site_id, hash_secret(secret), created_at=datetime.now(UTC))
    return record, f"hs_{key_id}_{secret}"


def new_site_id(name: str) -> str:
    """A readable, unique id: the name's slug and 6 random hex digits."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "site"
    return f"{slug}-{secrets.token_hex(3)}"


def key_id_of(api_key: str) -> str | None:
    """The key's id, if the string has the shape of one of our keys."""
    match = KEY_PATTERN.match(api_key)
    return match.group(1) if match else None


def verify_key(api_key: str, raw: bytes | str | None) -> ApiKey | None:
    """The cached record `raw`, if `api_key` is its key and it is still active."""
    match = KEY_PATTERN.match(api_key)
    if match is None or raw is None:
        return None
    record = _key_from_json(raw)
    if not hmac.compare_digest(record.key_hash, hash_secret(match.group(2))):
        return None
    return record if record.active() else None


def decode_key(raw: bytes | str | None) -> ApiKey | None:
    """A cached key record (already verified against the secret by its reader)."""
    return None if raw is None else _key_from_json(raw)


def decode_site(raw: bytes | str | None) -> Site | None:
    """A cached site record."""
    return None if raw is None else _site_from_json(raw)


class RegistryCache:
    """The Redis copy of the registry, read on every keyed request."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._merge_keys = redis.register_script(MERGE_KEYS)
        self.keys_hash = f"{prefix}:registry:keys"
        self.sites_hash = f"{prefix}:registry:sites"
        self.origins_set = f"{prefix}:registry:origins"
        self._loaded = f"{prefix}:registry:loaded"

    async def key(self, api_key: str) -> ApiKey | None:
        """The active key record for this plaintext key, or None."""
        key_id = key_id_of(api_key)
        if key_id is None:
            return None
        return verify_key(api_key, await self._redis.hget(self.keys_hash, key_id))

    async def site(self, site_id: str) -> Site | None:
        return decode_site(await self._redis.hget(self.sites_hash, site_id))

    async def origin_allowed_somewhere(self, origin: str) -> bool:
        """True if some public site allows this origin (for CORS preflight)."""
        return bool(await self._redis.sismember(self.origins_set, origin))

    async def put(self, sites: Sequence[Site] = (), keys: Sequence[ApiKey] = ()) -> None:
        """Write records; keys merge with what is cached (see MERGE_KEYS)."""
        if sites:
            mapping: dict[Any, Any] = {site.site_id: _to_json(site) for site in sites}
            await self._redis.hset(self.sites_hash, mapping=mapping)
        if keys:
            args: list[Any] = []
            for key in keys:
                args += [key.key_id, _to_json(key)]
            await self._merge_keys(keys=[self.keys_hash], args=args)
        if sites:
            await self._refresh_origins()

    async def _refresh_origins(self) -> None:
        """The union of public sites' origins, recomputed after any site change (rare)."""
        every: dict[Any, Any] = await self._redis.hgetall(self.sites_hash)
        origins = {
            origin
            for site in map(_site_from_json, every.values())
            if site.public
            for origin in site.allowed_origins
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.origins_set)
            if origins:
                pipe.sadd(self.origins_set, *origins)
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


class Registry:
    """Site and key administration: ClickHouse first (durable), then the Redis cache."""

    def __init__(self, client: Client, cache: RegistryCache) -> None:
        self._client = client
        self.cache = cache

    async def create_site(self, site: Site) -> tuple[ApiKey, str]:
        key, plaintext = new_key(site.site_id)
        await self._write(sites=[site], keys=[key])
        return key, plaintext

    async def update_site(self, site: Site) -> None:
        await self._write(sites=[site])

    async def sites(self, site_id: str = "") -> list[tuple[Site, list[ApiKey]]]:
        """Every site (or only `site_id`) with its keys, oldest first."""
        sites, keys = await to_thread.run_sync(self._load, site_id)
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
        """A new key; the site's active keys keep working for `grace_s` seconds more."""
        until = datetime.fromtimestamp(time.time() + grace_s, UTC)
        aging = [
            replace(k, expires_at=min(until, k.expires_at or until)) for k in keys if k.active()
        ]
        key, plaintext = new_key(site_id)
        await self._write(keys=[*aging, key])
        return key, plaintext

    async def revoke(self, key: ApiKey) -> None:
        """Revoked at once: the cache entry is replaced in the same request."""
        await self._write(keys=[replace(key, revoked=True)])

    async def ensure_cached(self) -> bool:
        """Rebuild the Redis cache from ClickHouse if it is missing; True if rebuilt."""
        if await self.cache.loaded():
            return False
        sites, keys = await to_thread.run_sync(self._load, "")
        await self.cache.replace_all(sites, keys)
        return True

    async def _write(self, sites: Sequence[Site] = (), keys: Sequence[ApiKey] = ()) -> None:
        await to_thread.run_sync(self._insert, sites, keys)
        await self.cache.put(sites, keys)

    def _insert(self, sites: Sequence[Site], keys: Sequence[ApiKey]) -> None:
        if sites:
            self._client.insert("sites", [s.row() for s in sites], column_names=SITE_COLUMNS)
        if keys:
            self._client.insert(KEYS_TABLE, [k.row() for k in keys], column_names=KEY_COLUMNS)

    def _load(self, site_id: str) -> tuple[list[Site], list[ApiKey]]:
        only = {"site_id": site_id}
        sites = [
            Site(site, name, bool(public), tuple(origins), _utc(created))
            for site, name, public, origins, created in self._client.query(
                SITES, parameters=only
            ).result_rows
        ]
        keys = [
            ApiKey(
                key_id,
                site,
                key_hash,
                _utc(created),
                _utc(expires) if expires else None,
                bool(revoked),
            )
            for key_id, site, key_hash, created, expires, revoked in self._client.query(
                KEYS, parameters=only
            ).result_rows
        ]
        return sorted(sites, key=lambda s: s.created_at), keys


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _to_json(record: Site | ApiKey) -> bytes:
    data = asdict(record)
    for name in ("created_at", "expires_at"):
        if name in data:
            data[name] = _ms(data[name])
    return orjson.dumps(data)


def _site_from_json(raw: bytes | str) -> Site:
    data = orjson.loads(raw)
    return Site(
        data["site_id"],
        data["name"],
        data["public"],
        tuple(data["allowed_origins"]),
        datetime.fromtimestamp(data["created_at"] / 1000, UTC),
    )


def _key_from_json(raw: bytes | str) -> ApiKey:
    data = orjson.loads(raw)
    expires = data["expires_at"]
    return ApiKey(
        data["key_id"],
        data["site_id"],
        data["key_hash"],
        datetime.fromtimestamp(data["created_at"] / 1000, UTC),
        None if expires is None else datetime.fromtimestamp(expires / 1000, UTC),
        data["revoked"],
    )

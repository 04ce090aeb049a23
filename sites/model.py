"""Sites and API keys as records: their fields, how keys are made and checked, and the
JSON form the Redis cache holds.

An API key reads `hs_<key_id>_<secret>`; only SHA-256(secret) is stored anywhere.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import orjson

from schemas.sites import default_website_id

KEY_PATTERN = re.compile(r"^hs_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")
# The origin of a request that sends none (a server, not a browser): admitted without a
# key by a public site that accepts server events. The admission rule
# (sites/lua/site_rules.lua) reads the empty origin so, and the cached set of allowed
# origins holds it while some public site does (sites/cache.py).
NO_ORIGIN = ""


@dataclass(frozen=True)
class Site:
    """A site; `public` sites accept events without a key from `allowed_origins` (and,
    with `accept_server_events`, from senders with no Origin: servers), at
    `public_rate_limit_per_s` requests a second if its owner set one (0: the
    deployment's HITSTREAM_RATE_LIMIT_KEY_PER_S); events in Plausible's shape name it by
    its id or one of its `domains`; Umami's clients name it by its `website_id` (a UUID,
    random when made, settable)."""

    site_id: str
    name: str
    public: bool = False
    allowed_origins: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    domains: tuple[str, ...] = ()
    timezone: str = "UTC"
    public_rate_limit_per_s: float = 0
    accept_server_events: bool = False
    website_id: str = field(default_factory=lambda: new_website_id())


@dataclass(frozen=True)
class ApiKey:
    """One key of a site: valid until revoked or, after a rotation, until `expires_at`.

    Requests are checked by the cache's scripts (sites/lua/key_rules.lua, key_is_valid),
    with Redis's clock; `active` is the same rule for what the admin routes show
    (tests/sites/test_cache_lua.py checks they agree).
    """

    key_id: str
    site_id: str
    key_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked: bool = False
    # A share token: reads the site's stats, never sends events (sites/access.py).
    read_only: bool = False

    def active(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


# How the records of one key merge wherever two meet: ClickHouse's query over its rows
# (sites/store.py, KEYS) and the Redis cache's script (sites/lua/merge_keys.lua) both
# receive this rule, and a test checks they agree. Revocation and a share token's
# read-only mark are for good (ANY: true if any record has it), so no write that lacks
# them (a rotation that read the key before a revocation, a build from before share
# tokens) can bring a key back or let a share token write; a time only moves earlier
# (EARLIEST: the earliest any record sets; none if none does). The other fields never
# change for a key.
ANY = "any"
EARLIEST = "earliest"
KEY_MERGE: dict[str, str] = {
    "created_at": EARLIEST,
    "expires_at": EARLIEST,
    "revoked": ANY,
    "read_only": ANY,
}


@dataclass(frozen=True)
class KeyClaim:
    """What a presented key claims: its id, and the hash its secret must match."""

    key_id: str
    proof: str


def hash_secret(secret: str) -> str:
    """What is stored of a key: SHA-256 of its secret (keys are 256-bit random)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def claim_of(api_key: str) -> KeyClaim | None:
    """The claim a presented key makes, if it has the shape of one of our keys."""
    match = KEY_PATTERN.match(api_key)
    return KeyClaim(match.group(1), hash_secret(match.group(2))) if match else None


def new_key(site_id: str, read_only: bool = False) -> tuple[ApiKey, str]:
    """A fresh key for `site_id` and its plaintext, which is shown once and never stored."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    record = ApiKey(
        key_id, site_id, hash_secret(secret), created_at=datetime.now(UTC), read_only=read_only
    )
    return record, f"hs_{key_id}_{secret}"


def new_website_id() -> str:
    """A new site's website_id: a random (version 4) UUID."""
    return str(uuid.uuid4())


def new_site_id(name: str) -> str:
    """A readable, unique id: the name's slug and 6 random hex digits."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "site"
    return f"{slug}-{secrets.token_hex(3)}"


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_json(record: Site | ApiKey) -> bytes:
    """The cached form of a record: its fields, times as epoch milliseconds."""
    data = asdict(record)
    for name in ("created_at", "expires_at"):
        if name in data:
            data[name] = _ms(data[name])
    return orjson.dumps(data)


def site_from_json(raw: bytes | str) -> Site:
    data = orjson.loads(raw)
    return Site(
        data["site_id"],
        data["name"],
        data["public"],
        tuple(data["allowed_origins"]),
        _moment(data["created_at"]),
        tuple(data.get("domains", ())),  # absent from records cached before migration 0010
        data.get("timezone", "UTC"),  # absent from records cached before migration 0011
        data.get("public_rate_limit_per_s", 0),  # absent before migration 0015
        data.get("accept_server_events", False),  # absent before migration 0016
        # absent before migration 0017, whose default for stored sites this is
        data.get("website_id") or default_website_id(data["site_id"]),
    )


def key_from_json(raw: bytes | str) -> ApiKey:
    data = orjson.loads(raw)
    expires = data["expires_at"]
    return ApiKey(
        data["key_id"],
        data["site_id"],
        data["key_hash"],
        _moment(data["created_at"]),
        None if expires is None else _moment(expires),
        data["revoked"],
        data.get("read_only", False),  # absent from records cached before migration 0014
    )

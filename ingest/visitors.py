"""Unique visitors without cookies: a visitor is a keyed hash of (the day's salt, site,
client IP, User-Agent), as Plausible counts them.

Salts are random, one per UTC day, and live in Redis with the rest of the shared state
(as Plausible keeps its salts in its database), so every ingest process, and every
restart of one, hashes a day's visitors with the same salt. The first process to need a
day's salt makes it with SET NX (the others get the one stored) and each caches it for
the day. A salt expires at the end of the day after its own, as Plausible keeps the
current and the previous day's salts and deletes older ones: from then on nobody can
link that day's visitor IDs to an IP and User-Agent, not even with the database. An
expired key leaves Redis's memory but not its append-only file: `erase_expired_salts`
rewrites the embedded Valkey's AOF after each expiry (docs/security.md, Privacy, says what an
external Redis's operator must do).

When Redis cannot give a day's salt, ingest answers 503 (a RedisError, as for any other
Redis failure): a salt made up by one process would count the day's visitors twice.

An event that carries a `user_id` is counted by it: its visitor is a keyed hash of
(site, user_id) without a salt, so a signed-in user is one visitor on every day.

A day's salted visitors are numbered, densely per site (schemas/entry.py NUMBER_DAY:
page breakdowns keep them as bitmaps), when the day's salt was made by a release that
numbers them: such a salt is NUMBERED_SALT_BYTES long, an older one SALT_BYTES. Every
release hashes with the whole stored salt, so both agree on the visitor IDs, and a day
that began before an upgrade stays unnumbered to its end: its visitors are never counted
once by ID and again by number.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from foundation.clients import RedisClient
from foundation.errors import REDIS_ERRORS
from foundation.keys import RedisKeys

log = logging.getLogger(__name__)

DAY_S = 86_400
# A salt is kept for its day and the next (a peer whose clock lags still finds it).
SALT_DAYS = 2
SALT_BYTES = 32  # a salt made by a release that does not number visitors
NUMBERED_SALT_BYTES = 48
USER_KEY = b"hitstream user visitor"
# The AOF is rewritten this long after midnight (UTC), when Redis (whose clock decides
# the expiry) has surely expired the salt of the day before yesterday...
ERASE_AFTER_S = 60.0
# ...or this long after a rewrite that could not run (Redis away, or still holding it).
ERASE_RETRY_S = 60.0
REWRITE_POLL_S = 0.1


def utc_day(moment_s: float) -> int:
    """Days since the epoch of a UTC timestamp."""
    return int(moment_s // DAY_S)


def day_name(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * DAY_S))


def salt_expiry(day: int) -> int:
    """When the salt of `day` is deleted (epoch s): the end of the next day."""
    return (day + SALT_DAYS) * DAY_S


@dataclass(frozen=True, slots=True)
class Salt:
    """A UTC day's salt, and the day under which its visitors are numbered (0: none)."""

    key: bytes
    number_day: int = 0


def salt_of(day: int, stored: bytes) -> Salt:
    """The salt of `day` as stored, numbering its visitors if it says so."""
    return Salt(stored, day if len(stored) == NUMBERED_SALT_BYTES else 0)


class DailySalts:
    """The salt of the current UTC day, made or read once per process and day."""

    def __init__(
        self, redis: RedisClient, keys: RedisKeys, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._day = -1
        self._salt = Salt(b"")
        self._fetching = asyncio.Lock()  # one round trip at midnight, not one per request

    async def today(self) -> Salt:
        """The salt of the current UTC day; raises RedisError (a 503) when Redis cannot
        give it."""
        day = utc_day(self._clock())
        if day != self._day:
            async with self._fetching:
                if day != self._day:
                    self._salt, self._day = await self._fetch(day), day
        return self._salt

    async def _fetch(self, day: int) -> Salt:
        """Make the day's salt unless another process did first; either way the one
        stored wins, so every process hashes with the same salt."""
        mine = os.urandom(NUMBERED_SALT_BYTES)
        stored: Any = await self._redis.set(
            self._keys.salt(day_name(day)), mine, nx=True, exat=salt_expiry(day), get=True
        )
        return salt_of(day, bytes(stored) if stored is not None else mine)


async def erase_expired_salts(
    redis: RedisClient, keys: RedisKeys, clock: Callable[[], float] = time.time
) -> None:
    """Run for the life of the process that owns the embedded Valkey: at start (salts
    may have expired while nothing ran) and after each UTC midnight, once the salt of
    the day before yesterday has expired, rewrite the AOF from memory, so the salt's
    bytes leave the disk (the files that held them are deleted)."""
    while True:
        try:
            expired = keys.salt(day_name(utc_day(clock()) - SALT_DAYS))
            # A read deletes a key whose time has passed: the rewrite cannot copy it.
            if await redis.exists(expired):
                log.warning("%s has not expired yet; rewriting the AOF later", expired)
                wait = ERASE_RETRY_S
            else:
                await rewrite_aof(redis)
                wait = (utc_day(clock()) + 1) * DAY_S + ERASE_AFTER_S - clock()
        except (*REDIS_ERRORS, OSError) as exc:
            log.warning("cannot rewrite the AOF without the expired salt (retrying): %s", exc)
            wait = ERASE_RETRY_S
        await asyncio.sleep(wait)


async def rewrite_aof(redis: RedisClient) -> None:
    """BGREWRITEAOF, waiting until it is done; raises RedisError if it failed."""
    await redis.bgrewriteaof()
    while True:
        info: dict[str, Any] = await redis.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            break
        await asyncio.sleep(REWRITE_POLL_S)
    if info["aof_last_bgrewrite_status"] != "ok":
        raise RedisError(f"the AOF rewrite failed ({info['aof_last_bgrewrite_status']})")


class RequestVisitor:
    """The visitors of one request's events, each as (visitor ID, the salt day it is
    numbered under or 0): by `user_id` when an event has one (never numbered), else by
    the request's IP and User-Agent under today's salt."""

    def __init__(self, salt: Salt, ip: str, user_agent: str) -> None:
        self._salt, self._ip, self._user_agent = salt, ip, user_agent
        self._by_site: dict[str, tuple[int, int]] = {}  # a batch's events mostly share one site

    def __call__(self, site_id: str, user_id: str | None) -> tuple[int, int]:
        if user_id:
            return user_visitor_id(site_id, user_id), 0
        found = self._by_site.get(site_id)
        if found is None:
            hashed = visitor_id(self._salt.key, site_id, self._ip, self._user_agent)
            found = self._by_site[site_id] = (hashed, self._salt.number_day)
        return found


def visitor_id(salt: bytes, site_id: str, ip: str, user_agent: str) -> int:
    """A 64-bit visitor ID for one day: nothing of the IP or User-Agent can be read
    back from it, and without the day's salt it cannot be recomputed."""
    data = f"{site_id}\0{ip}\0{user_agent}".encode(errors="surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=salt).digest(), "little")


def user_visitor_id(site_id: str, user_id: str) -> int:
    """The visitor ID of a signed-in user: the same on every day."""
    data = f"{site_id}\0{user_id}".encode(errors="surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=USER_KEY).digest(), "little")


def address_tag(salt: bytes, ip: str) -> str:
    """What a rate-limit bucket is named by instead of the IP (Redis persists key names)."""
    return hashlib.blake2b(ip.encode(), digest_size=8, key=salt).hexdigest()


async def address_of(salts: DailySalts, ip: str) -> str:
    """What buckets are named by instead of the client's IP (address_tag): an
    IPv6 client by its /64, which one subscriber holds whole (it could take a new address
    for every request)."""
    return address_tag((await salts.today()).key, bucket_address(ip))


def bucket_address(ip: str) -> str:
    """The address a client's buckets are charged to: an IPv4 address, an IPv6 /64."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(parsed, ipaddress.IPv4Address):
        return ip
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return f"{ipaddress.IPv6Network((parsed, 64), strict=False).network_address}/64"

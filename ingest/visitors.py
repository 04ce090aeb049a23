"""Unique visitors without cookies: a visitor is a keyed hash of (the day's salt, site,
client IP, User-Agent), as Plausible counts them.

Salts are random, one per UTC day, shared by every ingest process through Redis and
deleted two days after their day ends: from then on an ID can no longer be linked to
an IP and User-Agent, not even by whoever holds the database. The IP and User-Agent
are hashed in memory and never written anywhere.

An event that carries a `user_id` is counted by it: its visitor is a keyed hash of
(site, user_id) without a salt, so a signed-in user is one visitor on every day.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from hitstream.keys import RedisKeys

DAY_S = 86_400
# A salt outlives its day by this much (events of the day may arrive late in it).
SALT_KEPT_S = 2 * DAY_S
SALT_BYTES = 32
USER_KEY = b"hitstream user visitor"


def utc_day(moment_s: float) -> int:
    """Days since the epoch of a UTC timestamp."""
    return int(moment_s // DAY_S)


def day_name(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * DAY_S))


class DailySalts:
    """Today's salt, fetched (or made) once per process and day."""

    def __init__(
        self, redis: aioredis.Redis, keys: RedisKeys, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._day = -1
        self._salt = b""

    async def today(self) -> bytes:
        """The salt of the current UTC day."""
        day = utc_day(self._clock())
        if day != self._day:
            self._salt = await self._fetch(day)
            self._day = day
        return self._salt

    async def _fetch(self, day: int) -> bytes:
        """Make the day's salt unless another process did first; either way, the one
        stored wins, so every process hashes with the same salt."""
        key = self._keys.salt(day_name(day))
        mine = os.urandom(SALT_BYTES)
        expires_at = (day + 1) * DAY_S + SALT_KEPT_S
        stored: Any = await self._redis.set(key, mine, nx=True, exat=expires_at, get=True)
        return bytes(stored) if stored is not None else mine


class RequestVisitor:
    """The visitor IDs of one request's events: by `user_id` when an event has one, else
    by the request's IP and User-Agent under today's salt."""

    def __init__(self, salt: bytes, ip: str, user_agent: str) -> None:
        self._salt, self._ip, self._user_agent = salt, ip, user_agent

    def __call__(self, site_id: str, user_id: str | None) -> int:
        if user_id:
            return user_visitor_id(site_id, user_id)
        return visitor_id(self._salt, site_id, self._ip, self._user_agent)


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

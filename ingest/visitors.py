"""Unique visitors without cookies: a visitor is a keyed hash of (the day's salt, site,
client IP, User-Agent), as Plausible counts them.

Salts are random, one per UTC day, and never leave memory: every ingest process holds
the salt of the day (and of the day before, to answer a peer whose clock is behind) and
hands it to the others over Redis Pub/Sub, which Redis never writes to disk. Redis
keeps only a claim per day, persisted like everything in it: a generation number and
a random nonce naming who made the salt, nothing secret. A process without the day's
salt asks the others; when nobody answers (the first process of the day, or every
holder stopped) it claims the next generation with a compare-and-set and makes one.
Should two processes make one at once (an answer slower than ASK_WAIT_S), both adopt
the later generation as soon as it is handed out. Salts older than the day before are
dropped, so two days after a day ends nobody can link its visitor IDs to an IP and
User-Agent, not even with the database and every file Redis wrote. The cost: when
every ingest process stops at once, the next one starts a new salt, and that day's
visitors before and after count twice.

An event that carries a `user_id` is counted by it: its visitor is a keyed hash of
(site, user_id) without a salt, so a signed-in user is one visitor on every day.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hitstream.errors import StreamUnavailable
from hitstream.keys import RedisKeys

log = logging.getLogger(__name__)

DAY_S = 86_400
# A day's claim outlives its day by this much; salts themselves are dropped sooner.
SALT_KEPT_S = 2 * DAY_S
SALT_BYTES = 32
USER_KEY = b"hitstream user visitor"
ASK_WAIT_S = 0.5  # how long a process waits for a peer to hand it the day's salt
OBTAIN_ATTEMPTS = 5
RESUBSCRIBE_S = 1.0
SUBSCRIBE_WAIT_S = 5.0  # a request waits this long for the channel before a 503

# KEYS[1]: the day's claim; ARGV: the claim read before asking ('' if none), the new
# claim, its expiry (epoch s). 1 if the claim was still the one read, and is now ours.
CLAIM = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EXAT', ARGV[3])
return 1
"""


def utc_day(moment_s: float) -> int:
    """Days since the epoch of a UTC timestamp."""
    return int(moment_s // DAY_S)


def day_name(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * DAY_S))


class DailySalts:
    """The salts this process holds, shared with its peers through Redis Pub/Sub.

    `run()` must run for the process's life (it answers peers and hears their salts);
    `today()` gives the current day's salt, asking peers or making one the first time.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: RedisKeys,
        clock: Callable[[], float] = time.time,
        ask_wait_s: float = ASK_WAIT_S,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._ask_wait_s = ask_wait_s
        self._claim = redis.register_script(CLAIM)
        self._salts: dict[int, tuple[int, bytes]] = {}  # day -> (generation, salt)
        self._arrived: dict[int, asyncio.Event] = {}
        self._listening = asyncio.Event()
        self._obtaining = asyncio.Lock()

    async def today(self) -> bytes:
        """The salt of the current UTC day."""
        day = utc_day(self._clock())
        held = self._salts.get(day)
        if held is not None:
            return held[1]
        async with self._obtaining:
            held = self._salts.get(day)
            if held is None:
                held = await self._obtain(day)
            self._forget_before(day - 1)
            return held[1]

    def held_days(self) -> list[int]:
        """The days whose salts this process holds (for tests and diagnostics)."""
        return sorted(self._salts)

    async def run(self) -> None:
        """Listen on the salt channel for the process's life, resubscribing after errors."""
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._keys.salt_channel)
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is None:
                            continue
                        if message["type"] == "subscribe":  # confirmed: peers reach us
                            self._listening.set()
                        elif message["type"] == "message":
                            await self._heard(message["data"])
            except (RedisError, OSError) as exc:
                self._listening.clear()
                log.warning("salt channel lost (%s); resubscribing", exc)
                await asyncio.sleep(RESUBSCRIBE_S)

    async def _obtain(self, day: int) -> tuple[int, bytes]:
        """The day's salt from a peer, or a new one under the next claim."""
        try:
            await asyncio.wait_for(self._listening.wait(), SUBSCRIBE_WAIT_S)
        except TimeoutError:
            raise StreamUnavailable("the salt channel is not subscribed") from None
        key = self._keys.salt_claim(day_name(day))
        expires_at = (day + 1) * DAY_S + SALT_KEPT_S
        for _ in range(OBTAIN_ATTEMPTS):
            claim: Any = await self._redis.get(key)
            # A claim means some process made the day's salt: ask for it. No claim: the
            # first of the day makes it at once (the others' claims then fail: they ask).
            held = self._salts.get(day)  # handed out by a peer meanwhile
            if held is None and claim:
                held = await self._ask(day)
            if held is not None:
                return held
            generation = int(bytes(claim).split(b":", 1)[0]) + 1 if claim else 1
            mine = f"{generation}:{secrets.token_hex(8)}"
            if await self._claim(keys=[key], args=[claim or b"", mine, expires_at]):
                salt = os.urandom(SALT_BYTES)
                self._salts[day] = (generation, salt)
                await self._give(day)
                return generation, salt
            # Another process claimed it since: its salt is on the way.
            held = await self._ask(day)
            if held is not None:
                return held
        raise StreamUnavailable(f"no salt for {day_name(day)} after {OBTAIN_ATTEMPTS} attempts")

    async def _ask(self, day: int) -> tuple[int, bytes] | None:
        """Ask the peers for the day's salt; what arrived within the wait, if anything."""
        arrived = self._arrived.setdefault(day, asyncio.Event())
        arrived.clear()
        await self._redis.publish(self._keys.salt_channel, f"ask {day}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), self._ask_wait_s)
        return self._salts.get(day)

    async def _give(self, day: int) -> None:
        generation, salt = self._salts[day]
        await self._redis.publish(self._keys.salt_channel, f"give {day} {generation} {salt.hex()}")

    async def _heard(self, data: bytes) -> None:
        """A peer's ask (answered if this process holds that day's salt) or salt (taken
        if it is newer than the one held)."""
        parts = data.split()
        try:
            if parts[0] == b"ask" and len(parts) == 2:
                day = int(parts[1])
                if day in self._salts:
                    await self._give(day)
            elif parts[0] == b"give" and len(parts) == 4:
                day, generation, salt = (
                    int(parts[1]),
                    int(parts[2]),
                    bytes.fromhex(parts[3].decode()),
                )
                if len(salt) == SALT_BYTES and generation > self._salts.get(day, (0, b""))[0]:
                    self._salts[day] = (generation, salt)
                    self._arrived.setdefault(day, asyncio.Event()).set()
        except (ValueError, IndexError):
            log.warning("ignored a malformed message on the salt channel")

    def _forget_before(self, day: int) -> None:
        for old in [d for d in self._salts if d < day]:
            del self._salts[old]
            self._arrived.pop(old, None)


class RequestVisitor:
    """The visitor IDs of one request's events: by `user_id` when an event has one, else
    by the request's IP and User-Agent under today's salt."""

    def __init__(self, salt: bytes, ip: str, user_agent: str) -> None:
        self._salt, self._ip, self._user_agent = salt, ip, user_agent
        self._by_site: dict[str, int] = {}  # a batch's events mostly share one site

    def __call__(self, site_id: str, user_id: str | None) -> int:
        if user_id:
            return user_visitor_id(site_id, user_id)
        found = self._by_site.get(site_id)
        if found is None:
            found = self._by_site[site_id] = visitor_id(
                self._salt, site_id, self._ip, self._user_agent
            )
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

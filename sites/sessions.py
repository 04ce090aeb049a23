"""Dashboard logins: an admin token traded for a session cookie, kept in Redis.

The cookie holds a random secret; Redis holds only its SHA-256, with a fingerprint of
the admin token it was opened with, so changing the admin token ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from foundation.clients import RedisClient
from foundation.keys import RedisKeys

COOKIE = "hs_session"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Sessions:
    """Opens, checks and ends dashboard sessions."""

    def __init__(self, redis: RedisClient, keys: RedisKeys, ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self.ttl_s = ttl_s

    async def open(self, admin_token: str) -> str:
        """A new session's secret (for the cookie) for a caller who gave the admin token."""
        secret = secrets.token_urlsafe(32)
        await self._redis.set(
            self._keys.session(_digest(secret)), _digest(admin_token), ex=self.ttl_s
        )
        return secret

    async def valid(self, secret: str, admin_token: str) -> bool:
        """True while the session lives and the admin token is the one it was opened with."""
        if not secret or len(secret) > 128:
            return False
        held = await self._redis.get(self._keys.session(_digest(secret)))
        if held is None:
            return False
        held = held.decode() if isinstance(held, bytes) else held
        return hmac.compare_digest(held.encode(), _digest(admin_token).encode())

    async def end(self, secret: str) -> None:
        """Log out: the session is gone for every copy of the cookie."""
        if secret and len(secret) <= 128:
            await self._redis.delete(self._keys.session(_digest(secret)))

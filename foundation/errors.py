"""The project's exception hierarchy: one root, a subclass for each thing callers handle.

Each outcome has its own branch, so the order of `except` clauses never decides it:
an engine that is away (retry later), rows the engine refuses (poison: retrying the
same rows cannot help), and shutdown (stop retrying, leave the work pending).
"""

from __future__ import annotations

from typing import ClassVar

from redis.exceptions import RedisClusterException, RedisError


class HitstreamError(Exception):
    """Root of every error hitstream raises on purpose."""


class ConfigError(HitstreamError):
    """Settings or environment that cannot work (bad URL, engine that will not start)."""


class EngineUnavailable(HitstreamError):
    """An engine did not take or answer a call; the same call may work later.

    `code` is the engine's own error code when it gave one (ClickHouse's numeric code).
    """

    engine: ClassVar[str] = "engine"

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class StreamUnavailable(EngineUnavailable):
    """Redis could not take an event or an acknowledgement."""

    engine = "redis"


class SinkUnavailable(EngineUnavailable):
    """ClickHouse could not take or answer a call; the batch stays pending."""

    engine = "clickhouse"


class RowsRejected(HitstreamError):
    """ClickHouse refused the rows themselves (a parse or type error, by `code`)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Stopping(HitstreamError):
    """Shutdown began while work could not be finished: it stays pending for redelivery."""


# What a Redis call can raise: redis-py's errors, and its cluster client's own, which do
# not derive from RedisError (a slot with no primary, no node reachable).
REDIS_ERRORS: tuple[type[RedisError], type[RedisClusterException]] = (
    RedisError,
    RedisClusterException,
)

"""Appending validated events to the Redis Stream: the only write ingest does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hitstream.errors import StreamUnavailable
from schemas.event import Encoded

log = logging.getLogger(__name__)

# Fields of a stream entry: the event's JSONEachRow line, and a marker that its
# event_id came from the client (so a retry of it must be recognised).
ROW_FIELD = b"e"
CLIENT_ID_FIELD = b"c"
DEDUP_KEY_PREFIX = "hitstream:eid:"

# Atomically: for each (row, key) pair, append the row unless the key (a client's
# event_id) was already seen within the window. '' as key means "no client id".
# Claiming the key and appending happen together or not at all, so a failed append
# never leaves a key that would make the client's retry look like a duplicate.
APPEND_ONCE = """
local window = tonumber(ARGV[1])
local added = 0
for i = 2, #ARGV, 2 do
  local key = ARGV[i + 1]
  if key == '' then
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
    added = added + 1
  elseif redis.call('SET', key, '1', 'NX', 'EX', window) then
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i], 'c', '1')
    added = added + 1
  end
end
return added
"""


class StreamWriter:
    """Appends encoded events to one stream; a batch is appended atomically.

    Events whose event_id came from the client are appended at most once per
    dedup window (a client retry inside the window is acknowledged, not re-added).
    """

    def __init__(
        self, redis: aioredis.Redis, stream: str, dedup_window_s: int, high_water: int
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._window = dedup_window_s
        self._high_water = high_water
        self._append_once = redis.register_script(APPEND_ONCE)
        self.backlog = 0
        # Group commit of single events: requests that arrive while a script call is in
        # flight go together in the next one; each is answered once its entry is stored.
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    @property
    def overloaded(self) -> bool:
        """True when the stream holds more entries than the high-water mark."""
        return self.backlog >= self._high_water

    async def append(self, events: Sequence[Encoded]) -> None:
        """Store all events or none of them; returns only once Redis has them."""
        if len(events) == 1 and not events[0].client_id:
            await self._group_commit(events[0].row)
            return
        try:
            await self._run_script(
                [(e.row, DEDUP_KEY_PREFIX + e.event_id if e.client_id else "") for e in events]
            )
        except RedisError as exc:
            raise StreamUnavailable(str(exc)) from exc

    async def _run_script(self, rows: Sequence[tuple[bytes, str]]) -> None:
        """One EVALSHA appends them all, atomically (far cheaper than one XADD each)."""
        args: list[str | bytes | int] = [self._window]
        for row, key in rows:
            args += [row, key]
        await self._append_once(keys=[self._stream], args=args)

    async def _group_commit(self, row: bytes) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((row, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit())
        await done

    async def _commit(self) -> None:
        """Send the waiting single events, one script call at a time, until none wait."""
        await asyncio.sleep(0)  # let requests of this loop iteration join
        while self._waiting:
            group, self._waiting = self._waiting, []
            failure: Exception | None = None
            try:
                await self._run_script([(row, "") for row, _ in group])
            except RedisError as exc:
                failure = StreamUnavailable(str(exc))
            for _, done in group:
                if done.done():  # the client went away
                    continue
                if failure is not None:
                    done.set_exception(failure)
                else:
                    done.set_result(None)

    async def watch_backlog(self, interval_s: float) -> None:
        """Keep `backlog` (the stream's length) current; run as a background task."""
        while True:
            with contextlib.suppress(RedisError):
                self.backlog = int(await self._redis.xlen(self._stream))
            await asyncio.sleep(interval_s)

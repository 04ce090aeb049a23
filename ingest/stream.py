"""Appending validated events to the Redis Stream: the only write ingest does."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from string import Template

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hitstream.errors import StreamUnavailable
from hitstream.keys import RedisKeys
from schemas.entry import CLIENT_ID_FIELD, CLIENT_ID_MARK, ROW_FIELD
from schemas.event import Encoded

log = logging.getLogger(__name__)

# Client-chosen event IDs are remembered per site, in one Redis set per slice of the
# dedup window (16-byte members: 39 bytes of Redis memory per ID, measured, against ~133
# for a key per ID). An ID is found if it is in the current slice or any of the
# DEDUP_SLICES before it, so it is remembered for at least the window and at most one
# slice longer; each slice's set expires as a whole.
DEDUP_SLICES = 6

# Ingest answers 503 once Redis uses this share of its maxmemory (if it has one), so
# the stream never reaches the point where Redis refuses the consumers' acknowledgements.
MEMORY_HIGH_WATER = 0.9
# If the backlog could not be read for this long, ingest refuses (it cannot tell).
STALE_AFTER_S = 2.0

# A visit: a visitor's events with no gap of this long between them.
VISIT_GAP_MS = 30 * 60 * 1000

# Atomically: for each (row, site, id, visitor, ms) group, append the row unless `id` (a
# client's event_id, 16 bytes; '' for none) was already seen for that site within the
# window. Remembering the ID and appending happen together or not at all, so a failed
# append never leaves an ID that would make the client's retry look like a duplicate.
# Redis's clock decides the slice, so every ingest replica agrees. The entry's field
# names come from schemas/entry.py.
#
# The same script tells each event's visit, where the events of every ingest replica
# meet: a visitor's current visit is "<id> <last ms>" (its id is the time of its first
# event); an event less than the gap after the last one (or before the first) joins it,
# a later one starts a new visit, a much older one (an import) gets a visit of its own
# and leaves the current one alone. The id is written into the row's last field
# (entry.SESSION_TAIL). Appended together with the row: a visit is never assigned to an
# event that was not stored, and a stored event always has its visit.
APPEND_ONCE = Template("""
local prefix, window, slices = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local visits, gap = ARGV[4], tonumber(ARGV[5])
local width = math.ceil(window / slices)
local current = math.floor(tonumber(redis.call('TIME')[1]) / width)
local added = 0
local states = {}
local function with_visit(row, id)
  return string.sub(row, 1, -3) .. string.format('%d', id) .. '}'
end
local function visit(row, site, visitor, ms)
  if visitor == '0' then
    return row
  end
  ms = tonumber(ms)
  local key = visits .. site .. ':' .. visitor
  local state = states[key]
  if state == nil then
    local stored = redis.call('GET', key)
    if stored then
      local first, seen = string.match(stored, '^(%d+) (%d+)$$')
      state = {tonumber(first), tonumber(seen)}
    else
      state = false
    end
  end
  local id = ms
  if state and ms < state[2] + gap and ms > state[1] - gap then
    id = state[1]
    state = {id, math.max(state[2], ms)}
  elseif state and ms < state[1] then
    return with_visit(row, ms)
  else
    state = {ms, ms}
  end
  states[key] = state
  return with_visit(row, id)
end
for i = 6, #ARGV, 5 do
  local site, id = ARGV[i + 1], ARGV[i + 2]
  if id == '' then
    redis.call('XADD', KEYS[1], '*', '$row', visit(ARGV[i], site, ARGV[i + 3], ARGV[i + 4]))
    added = added + 1
  else
    local seen = false
    for slice = current - slices, current do
      if redis.call('SISMEMBER', prefix .. site .. ':' .. slice, id) == 1 then
        seen = true
        break
      end
    end
    if not seen then
      local key = prefix .. site .. ':' .. current
      redis.call('SADD', key, id)
      redis.call('EXPIREAT', key, (current + 1) * width + window)
      local row = visit(ARGV[i], site, ARGV[i + 3], ARGV[i + 4])
      redis.call('XADD', KEYS[1], '*', '$row', row, '$client', '$mark')
      added = added + 1
    end
  end
end
-- Each visitor's visit is read and written once per call, however many events it had.
for key, state in pairs(states) do
  if state then
    redis.call('SET', key, string.format('%d %d', state[1], state[2]), 'PX', 2 * gap)
  end
end
return added
""").substitute(
    row=ROW_FIELD.decode(), client=CLIENT_ID_FIELD.decode(), mark=CLIENT_ID_MARK.decode()
)


class StreamWriter:
    """Appends encoded events to one stream; a batch is appended atomically.

    Events whose event_id came from the client are appended at most once per site and
    dedup window (a client retry inside the window is acknowledged, not re-added).
    """

    def __init__(
        self, redis: aioredis.Redis, keys: RedisKeys, dedup_window_s: int, high_water: int
    ) -> None:
        self._redis = redis
        self._stream = keys.stream
        self._probe = keys.health_probe
        self._dedup_args: list[str | bytes | int] = [
            keys.dedup,
            dedup_window_s,
            DEDUP_SLICES,
            keys.visits,
            VISIT_GAP_MS,
        ]
        self._high_water = high_water
        self._append_once = redis.register_script(APPEND_ONCE)
        self.backlog = 0
        self.memory_share = 0.0
        self._read_at = time.monotonic()
        # Group commit of single events: requests that arrive while a script call is in
        # flight go together in the next one; each is answered once its entry is stored.
        self._waiting: list[tuple[Encoded, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    def refusal(self) -> str | None:
        """Why ingest must refuse now (503), or None: a long backlog, Redis nearly full,
        or no reading of either for STALE_AFTER_S (Redis not answering)."""
        if time.monotonic() - self._read_at > STALE_AFTER_S:
            return "the backlog could not be read; Redis is not answering"
        if self.backlog >= self._high_water:
            return f"backlog of {self.backlog} entries"
        if self.memory_share >= MEMORY_HIGH_WATER:
            return f"Redis memory {self.memory_share:.0%} full"
        return None

    async def can_append(self) -> bool:
        """For /health: True when ingest would take an event now.

        Redis must also take a write (a full disk makes it refuse them with MISCONF, a
        full memory with OOM, while it still answers reads).
        """
        if self.refusal() is not None:
            return False
        await self._redis.set(self._probe, b"1", px=10_000)
        return True

    async def append(self, events: Sequence[Encoded]) -> None:
        """Store all events or none of them; returns only once Redis has them."""
        if len(events) == 1 and not events[0].client_id:
            await self._group_commit(events[0])
            return
        try:
            await self._run_script(events)
        except RedisError as exc:
            raise StreamUnavailable(str(exc)) from exc

    async def _run_script(self, events: Sequence[Encoded]) -> None:
        """One EVALSHA appends them all, atomically (far cheaper than one XADD each)."""
        args = list(self._dedup_args)
        for e in events:
            args += [e.row, e.site_id, e.id_bytes if e.client_id else b"", e.visitor_id, e.ts_ms]
        await self._append_once(keys=[self._stream], args=args)

    async def _group_commit(self, event: Encoded) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
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
                await self._run_script([event for event, _ in group])
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
        """Keep `backlog` and `memory_share` current; run as a background task.

        A failed reading is not ignored: once the last good one is STALE_AFTER_S old,
        `refusal()` says so and ingest answers 503.
        """
        failing = False
        while True:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.xlen(self._stream)
                    pipe.info("memory")
                    length, memory = await pipe.execute()
                self.backlog = int(length)
                limit = int(memory.get("maxmemory") or 0)
                self.memory_share = int(memory["used_memory"]) / limit if limit else 0.0
                self._read_at = time.monotonic()
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("cannot read the backlog (ingest refuses meanwhile): %s", exc)
                failing = True
            await asyncio.sleep(interval_s)

"""The engine side of reporting: pools of ClickHouse clients lent to one request at a
time, and the stats queries a lent client runs.

What a request may take is bounded: a client is waited for asynchronously and at most
`wait_s` (then 503), its blocking work runs on the pool's own threads (never on the
thread pool the consumer, the registry and /health use), and every query carries the
engine limits of its pool (time, memory). Streaming answers (CSV) lend from
a pool of their own, so answers a slow client reads cannot take the readers of others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, ParamSpec, TypeVar

from anyio import CancelScope, CapacityLimiter, to_thread
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseError

from foundation.http import APIError, unavailable
from reporting.compiler import Compiled
from schemas.event import ENGAGEMENT

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# ClickHouse's codes for a query stopped by its own limits (the query's cost, not an
# outage), with the limit and the setting that sets it: 159 TIMEOUT_EXCEEDED,
# 241 MEMORY_LIMIT_EXCEEDED.
LIMIT_CODES = {
    159: ("time", "HITSTREAM_QUERY_TIMEOUT_S"),
    241: ("memory", "HITSTREAM_QUERY_MAX_MEMORY"),
}
# Streamed answers (CSV) are paced by the client reading them: their time limit is this
# many times a query's (the server cuts a client that stops reading much sooner).
STREAM_TIME_FACTOR = 6


def engine_settings(timeout_s: float, max_memory: int) -> dict[str, Any]:
    """The session settings of a stats reader: one thread (a stats query reads a few
    granules), and the limits no query may pass."""
    return {"max_threads": 1, "max_execution_time": timeout_s, "max_memory_usage": max_memory}


TOP_PATHS_LIMIT = 10

# One site on one UTC day, in one round trip (each query has a fixed cost of about a
# millisecond in the engine): the totals row (kind 0: views, exact unique users and
# visitors) and the most viewed paths (kind 1: views descending, ties by path ascending).
# event_type '' means all types but engagement (which only carries engagement data).
DAY_STATS = """
SELECT 0 AS kind, '' AS path, sum(views) AS n, uniqExactMerge(users) AS users,
    uniqExactMerge(visitors) AS visitors
FROM daily_totals
WHERE site_id = {site_id:String} AND day = {day:Date}
  AND ({event_type:String} = '' OR event_type = {event_type:String})
  AND event_type != {engagement:String}
UNION ALL
SELECT * FROM (
    SELECT 1 AS kind, path, sum(views) AS n, 0 AS users, 0 AS visitors
    FROM daily_pages
    WHERE site_id = {site_id:String} AND day = {day:Date}
      AND ({event_type:String} = '' OR event_type = {event_type:String})
      AND event_type != {engagement:String}
    GROUP BY path
    ORDER BY n DESC, path ASC
    LIMIT {limit:UInt32}
)
"""
# Both tables are read by their primary key, in granules of 32 and 256 rows: moving the
# conditions to PREWHERE saves no reading, and planning it (each part's column sizes
# and statistics) cost about 15% of the query's CPU (bench/README.md, seventh session).
DAY_STATS_SETTINGS = {"optimize_move_to_prewhere": 0}


# The first day a site has data, with whether it has any.
FIRST_DAY = """
SELECT min(day), count() FROM daily_totals WHERE site_id = {site_id:String}
"""


@dataclass(frozen=True)
class DayStats:
    """The answer of `GET /stats`."""

    site_id: str
    day: date
    total_views: int
    unique_users: int
    unique_visitors: int
    top_paths: list[tuple[str, int]]


class StatsReader:
    """The stats queries one lent client runs (blocking; the pool runs them in its threads).

    Every query is tagged with the lease's query id prefix, so a server can be told to
    stop them all when the client that asked has gone.
    """

    def __init__(self, client: Client, query_ids: str, owner: str = "") -> None:
        self.client = client
        self.query_ids = query_ids
        self.owner = owner
        self._numbers = itertools.count()

    def _settings(self) -> dict[str, Any]:
        return {"query_id": f"{self.query_ids}{next(self._numbers)}"}

    def _query(
        self, sql: str, parameters: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> list[Sequence[Any]]:
        result = self.client.query(
            sql, parameters=parameters, settings={**self._settings(), **(settings or {})}
        )
        return list(result.result_rows)

    def rows(self, compiled: Compiled) -> list[Sequence[Any]]:
        """Every row of a compiled stats query."""
        if compiled.no_rows:
            return []
        return self._query(compiled.sql, compiled.parameters)

    def blocks(self, compiled: Compiled) -> Iterator[Sequence[Sequence[Any]]]:
        """The rows of a compiled stats query, block by block, never all in memory."""
        if compiled.no_rows:
            return
        with self.client.query_row_block_stream(
            compiled.sql, parameters=compiled.parameters, settings=self._settings()
        ) as stream:
            yield from stream

    def first_day(self, site_id: str) -> date | None:
        """The first UTC day with data for the site (the aggregates outlive raw events)."""
        rows = self._query(FIRST_DAY, {"site_id": site_id})
        return rows[0][0] if rows and rows[0][1] else None

    def day_stats(self, site_id: str, day: date, event_type: str | None = None) -> DayStats:
        """Totals and top paths of one site on one UTC day."""
        params = {
            "site_id": site_id,
            "day": day,
            "event_type": event_type or "",
            "engagement": ENGAGEMENT,
            "limit": TOP_PATHS_LIMIT,
        }
        rows = self._query(DAY_STATS, params, DAY_STATS_SETTINGS)
        # UNION ALL does not order its parts: the totals row is found by its kind, and
        # the paths are re-sorted (ten rows at most) in the order the query chose them.
        views, users, visitors = next(
            ((n, u, v) for kind, _, n, u, v in rows if kind == 0), (0, 0, 0)
        )
        paths = sorted(((str(p), int(n)) for kind, p, n, _, _ in rows if kind == 1), key=_by_views)
        return DayStats(
            site_id=site_id,
            day=day,
            total_views=int(views or 0),
            unique_users=int(users or 0),
            unique_visitors=int(visitors or 0),
            top_paths=paths,
        )


def _by_views(path_views: tuple[str, int]) -> tuple[int, str]:
    """Views descending, ties by path ascending (as the query ranked them)."""
    path, views = path_views
    return -views, path


@dataclass
class _Share:
    """One owner's part of a pool: its slots, and its requests holding or waiting."""

    slots: asyncio.Semaphore
    users: int = 0


class Readers:
    """A pool of ClickHouse clients, each lent to one request at a time."""

    def __init__(
        self,
        name: str,
        clients: Sequence[Client],
        wait_s: float,
        kill: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._idle: asyncio.Queue[Client] = asyncio.Queue()
        for client in clients:
            self._idle.put_nowait(client)
        self.size = len(clients)
        self._wait_s = wait_s
        self._kill = kill
        # One thread per client: the pool never needs more, and never waits for others'.
        self._threads = CapacityLimiter(len(clients))
        self._per_owner = max(1, len(clients) // 2)
        self._shares: dict[str, _Share] = {}

    @property
    def idle(self) -> int:
        """Clients not lent now."""
        return self._idle.qsize()

    async def borrow(self, owner: str = "") -> StatsReader:
        """A client for this request, waited for at most `wait_s` (then a 503); it must be
        given back.

        One `owner` (a client address) holds at most half the pool at once: its further
        queries wait behind its own, so one client (a dashboard's panels, or a flood)
        cannot take every reader from the others.
        """
        share = self._shares.setdefault(owner, _Share(asyncio.Semaphore(self._per_owner)))
        share.users += 1
        try:
            async with asyncio.timeout(self._wait_s):
                await share.slots.acquire()
                try:
                    client = await self._idle.get()
                except BaseException:
                    share.slots.release()
                    raise
        except TimeoutError:
            self._leave(owner, share)
            raise unavailable(
                "every stats reader is busy, retry later", "query", f"{self.name} readers busy"
            ) from None
        except BaseException:
            self._leave(owner, share)
            raise
        return StatsReader(client, f"hitstream-{uuid.uuid4().hex}-", owner)

    def give_back(self, reader: StatsReader) -> None:
        self._idle.put_nowait(reader.client)
        share = self._shares[reader.owner]
        share.slots.release()
        self._leave(reader.owner, share)

    def _leave(self, owner: str, share: _Share) -> None:
        share.users -= 1
        if not share.users:
            del self._shares[owner]

    @contextlib.asynccontextmanager
    async def lease(self, owner: str = "") -> AsyncIterator[StatsReader]:
        """A client for the time of a block."""
        reader = await self.borrow(owner)
        try:
            yield reader
        finally:
            self.give_back(reader)

    async def call(
        self, reader: StatsReader, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run blocking work of a lent client on the pool's threads; engine limits become
        a 400 naming the limit."""
        with engine_limits():
            return await to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=self._threads)

    async def run(self, owner: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(reader, *args)` on a client lent to `owner`."""
        async with self.lease(owner) as reader:
            return await self.call(reader, fn, reader, *args)

    async def run_while(
        self, owner: str, connected: Callable[[], Any], fn: Callable[..., T], *args: Any
    ) -> T | None:
        """As `run`, but when `connected` (an awaitable that ends when the client leaves)
        ends first, the queries of the lease are stopped and None is returned.

        A server stops them at once (KILL QUERY); the embedded engine cannot stop a query
        from another thread, so there the query's time limit ends it.
        """
        async with self.lease(owner) as reader:
            work = asyncio.ensure_future(self.call(reader, fn, reader, *args))
            gone = asyncio.ensure_future(connected())
            try:
                await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
                if work.done():
                    return work.result()
                log.info("the client left: stopping its queries %s*", reader.query_ids)
                await self.stop_queries(reader)
                return None
            finally:
                gone.cancel()
                if not work.done():
                    # Lent until its query has ended (a client runs one query at a time),
                    # even when this request is cancelled (a shutdown).
                    with CancelScope(shield=True), contextlib.suppress(Exception):
                        await work

    async def stop_queries(self, reader: StatsReader) -> None:
        """Ask the engine to stop the lease's queries (a server's KILL QUERY)."""
        if self._kill is not None:
            with CancelScope(shield=True):
                await self._kill(reader.query_ids)

    async def pull(self, reader: StatsReader, chunks: Iterator[bytes]) -> bytes | None:
        """The next chunk of a blocking iterator over a lent client (None at its end),
        pulled on the pool's threads."""
        return await self.call(reader, next, chunks, None)

    async def finish(self, reader: StatsReader, chunks: Iterator[bytes], whole: bool) -> None:
        """Close the iterator; an answer that ended before its last chunk (the client
        gone or cut) first stops its queries. Safe to call twice."""
        with CancelScope(shield=True):
            if not whole:
                await self.stop_queries(reader)
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await to_thread.run_sync(close, limiter=self._threads)


@contextlib.contextmanager
def engine_limits() -> Iterator[None]:
    """A query stopped by its engine limits is a 400 saying which; other engine errors
    pass on (a 503)."""
    try:
        yield
    except ClickHouseError as exc:
        code = getattr(exc, "code", None)
        if code not in LIMIT_CODES:
            raise
        limit, setting = LIMIT_CODES[code]
        raise APIError(
            400,
            "query too costly",
            [{"field": "query", "message": f"it passed the {limit} limit of one query "
              f"({setting}); narrow date_range, filters or dimensions, or paginate"}],
        ) from None  # fmt: skip


def kill_queries(client: Client) -> Callable[[str], Awaitable[None]]:
    """Stop every query whose id starts with a prefix (a server's KILL QUERY), from a
    client and a thread of its own: the queries to stop may hold every reader's."""
    threads = CapacityLimiter(1)

    def kill(prefix: str) -> None:
        with contextlib.suppress(ClickHouseError):
            client.command(
                "KILL QUERY WHERE startsWith(query_id, {prefix:String}) ASYNC",
                parameters={"prefix": prefix},
            )

    async def run(prefix: str) -> None:
        await to_thread.run_sync(kill, prefix, limiter=threads)

    return run

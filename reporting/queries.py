"""Stats read from the materialized-view tables (never from raw events)."""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from clickhouse_connect.driver.client import Client

from reporting.compiler import Compiled
from schemas.event import ENGAGEMENT

TOP_PATHS_LIMIT = 10

# One site on one UTC day, in one round trip (each query has a fixed cost of about a
# millisecond in the engine): the totals row (kind 0: views, exact unique users and
# visitors)
# and the most viewed paths (kind 1: views descending, ties by path ascending).
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
    """Runs the stats queries (blocking; call from threads) on a pool of ClickHouse clients.

    A client runs one query at a time; several let concurrent requests overlap.
    """

    def __init__(self, clients: Sequence[Client]) -> None:
        self._idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for client in clients:
            self._idle.put(client)

    @contextmanager
    def _client(self) -> Iterator[Client]:
        client = self._idle.get()
        try:
            yield client
        finally:
            self._idle.put(client)

    def rows(self, compiled: Compiled) -> list[Sequence[Any]]:
        """Every row of a compiled stats query."""
        with self._client() as client:
            return list(client.query(compiled.sql, parameters=compiled.parameters).result_rows)

    def blocks(self, compiled: Compiled) -> Iterator[Sequence[Sequence[Any]]]:
        """The rows of a compiled stats query, block by block, never all in memory."""
        with (
            self._client() as client,
            client.query_row_block_stream(compiled.sql, parameters=compiled.parameters) as stream,
        ):
            yield from stream

    def first_day(self, site_id: str) -> date | None:
        """The first UTC day with data for the site (the aggregates outlive raw events)."""
        with self._client() as client:
            rows = client.query(FIRST_DAY, parameters={"site_id": site_id}).result_rows
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
        with self._client() as client:
            rows = client.query(DAY_STATS, parameters=params).result_rows
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

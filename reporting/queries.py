"""Stats read from the materialized-view tables (never from raw events)."""

from __future__ import annotations

import queue
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from clickhouse_connect.driver.client import Client

TOP_PATHS_LIMIT = 10

# Views and exact unique users of one site on one UTC day; event_type '' means all types.
TOTALS = """
SELECT sum(views), uniqExactMerge(users)
FROM daily_totals
WHERE site_id = {site_id:String} AND day = {day:Date}
  AND ({event_type:String} = '' OR event_type = {event_type:String})
"""

# The day's most viewed paths: views descending, ties by path ascending.
TOP_PATHS = """
SELECT path, sum(views) AS path_views
FROM daily_paths
WHERE site_id = {site_id:String} AND day = {day:Date}
  AND ({event_type:String} = '' OR event_type = {event_type:String})
GROUP BY path
ORDER BY path_views DESC, path ASC
LIMIT {limit:UInt32}
"""


@dataclass(frozen=True)
class DayStats:
    """The answer of `GET /stats`."""

    site_id: str
    day: date
    total_views: int
    unique_users: int
    top_paths: list[tuple[str, int]]


class StatsReader:
    """Runs the stats queries (blocking; call from threads) on a pool of ClickHouse clients.

    A client runs one query at a time; several let concurrent requests overlap.
    """

    def __init__(self, clients: Sequence[Client]) -> None:
        self._idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for client in clients:
            self._idle.put(client)

    def day_stats(self, site_id: str, day: date, event_type: str | None = None) -> DayStats:
        """Totals and top paths of one site on one UTC day."""
        params = {"site_id": site_id, "day": day, "event_type": event_type or ""}
        client = self._idle.get()
        try:
            views, users = client.query(TOTALS, parameters=params).result_rows[0]
            paths = client.query(
                TOP_PATHS, parameters={**params, "limit": TOP_PATHS_LIMIT}
            ).result_rows
        finally:
            self._idle.put(client)
        return DayStats(
            site_id=site_id,
            day=day,
            total_views=int(views or 0),
            unique_users=int(users or 0),
            top_paths=[(str(path), int(count)) for path, count in paths],
        )

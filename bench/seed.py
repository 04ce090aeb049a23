"""Bulk loader: N events over S sites and D days, generated inside ClickHouse.

`python -m bench.seed DATA_DIR EVENTS` fills the chdb database `hitstream serve`
will open from DATA_DIR; the materialized views fill the aggregates as usual.
It is an INSERT ... SELECT from numbers(), not ten million HTTP calls. The tables
are then merged (OPTIMIZE ... FINAL), as a service that took these events over 30
days would have them: a bulk load leaves many fresh parts that background merges
would otherwise be working through while /stats is measured.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hitstream.connections import clickhouse_client
from hitstream.settings import Settings
from schemas.migrate import migrate

# Deterministic pseudo-random events: 90% page views, 500 paths, 20k users, 20% anonymous.
SEED_EVENTS = """
INSERT INTO events (event_id, site_id, event_type, path, user_id, ts, received_at)
SELECT
    generateUUIDv4(number),
    concat('site-', toString(number % {sites:UInt32})),
    if(number % 10 = 0, 'click', 'page_view'),
    concat('/page/', toString(cityHash64(number) % 500)),
    if(number % 5 = 0, '', concat('user-', toString(cityHash64(number, 1) % 20000))),
    now64(3) - toIntervalMillisecond(cityHash64(number, 2) % ({days:UInt32} * 86400000)),
    now64(3)
FROM numbers({events:UInt64})
"""


MERGED_TABLES = ("events", "daily_totals", "daily_paths")


def seed(data_dir: Path, events: int, sites: int = 100, days: int = 30) -> float:
    """Load the events and merge the tables; return the seconds it took."""
    settings = Settings(data_dir=data_dir, redis_url="redis://unused")
    client = clickhouse_client(settings)
    try:
        migrate(client, settings.raw_ttl_days)
        started = time.perf_counter()
        client.command(
            SEED_EVENTS,
            parameters={"sites": sites, "days": days, "events": events},
            settings={"max_insert_threads": 2},
        )
        for table in MERGED_TABLES:
            client.command(f"OPTIMIZE TABLE {table} FINAL")
        return time.perf_counter() - started
    finally:
        client.close()


if __name__ == "__main__":
    took = seed(Path(sys.argv[1]), int(sys.argv[2]))
    print(f"loaded {int(sys.argv[2]):,} events in {took:.1f}s")

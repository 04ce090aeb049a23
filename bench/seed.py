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

from foundation.settings import Settings
from hitstream.connections import clickhouse_client
from schemas.migrate import migrate
from sites.model import Site
from sites.store import SiteStore

# Deterministic pseudo-random events in visits of 5 events a minute apart (visit
# v = number / 5): 90% page views over 50 paths; per visit a visitor
# (the site's events / 50 of them), one of 20 sources, a campaign on one visit in 5 (10
# of them), one of 30 countries, 10 browsers, 3 devices; one visit in 5 by a user.
# The visit's id is the time of its first event, as ingest writes it. The visitors are
# numbered (visitor_no): each keeps one number over the 30 days (a seeded visitor returns
# on other days, which a salted one never does: ingest numbers a day's visitors from the
# day's base, schemas/entry.py NUMBER_DAY), and the numbers are as dense as a day's.
SEED_EVENTS = """
INSERT INTO events (event_id, site_id, event_type, path, user_id, ts, received_at,
    visitor_id, visitor_no, session_id, source, utm_source, utm_campaign, country, browser,
    device, hostname)
SELECT
    generateUUIDv4(number),
    concat('site-', toString(visit % {sites:UInt32})),
    if(number % 10 = 0, 'click', 'pageview'),
    concat('/page/', toString(cityHash64(number) % 50)),
    if(visit % 5 = 0, concat('user-', toString(cityHash64(visit, 1) % 20000)), ''),
    opened + toIntervalMinute(number % 5),
    now64(3),
    cityHash64(visit, 3) % greatest(intDiv({events:UInt64}, 50 * {sites:UInt32}), 1) + 1 AS v,
    v,
    toUInt64(toUnixTimestamp64Milli(opened)),
    ['', 'Google', 'Bing', 'DuckDuckGo', 'Facebook', 'X', 'LinkedIn', 'Reddit', 'GitHub',
     'Hacker News', 'Instagram', 'Youtube', 'Yandex', 'Baidu', 'Ecosia', 'Mastodon',
     'news.example', 'blog.example', 'docs.example', 'forum.example'
    ][cityHash64(visit, 4) % 20 + 1],
    if(cityHash64(visit, 5) % 5 = 0, 'newsletter', ''),
    if(cityHash64(visit, 5) % 5 = 0, concat('campaign-', toString(cityHash64(visit, 6) % 10)), ''),
    ['US', 'DE', 'FR', 'GB', 'NL', 'ES', 'IT', 'PL', 'SE', 'NO', 'DK', 'FI', 'IE', 'PT', 'AT',
     'CH', 'BE', 'CZ', 'JP', 'KR', 'IN', 'BR', 'MX', 'CA', 'AU', 'NZ', 'ZA', 'EE', 'LV', 'LT'
    ][cityHash64(visit, 8) % 30 + 1],
    ['Chrome', 'Firefox', 'Safari', 'Microsoft Edge', 'Opera', 'Samsung Browser', 'Brave',
     'Vivaldi', 'Mobile App', 'Yandex Browser'][cityHash64(visit, 9) % 10 + 1],
    ['Desktop', 'Mobile', 'Tablet'][cityHash64(visit, 10) % 3 + 1],
    'example.com'
FROM (
    SELECT number, intDiv(number, 5) AS visit,
        toDateTime64(now() - toIntervalSecond(cityHash64(intDiv(number, 5), 2)
            % ({days:UInt32} * 86400)), 3) - toIntervalMinute(5) AS opened
    FROM numbers({events:UInt64})
)
"""


MERGED_TABLES = ("events", "daily_totals", "daily_pages", "daily_visits", "sessions")


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
        # Registered, as a real deployment's sites are (the dashboard lists them).
        SiteStore(client).insert([Site(f"site-{i}", f"Bench site {i}") for i in range(sites)])
        return time.perf_counter() - started
    finally:
        client.close()


if __name__ == "__main__":
    took = seed(Path(sys.argv[1]), int(sys.argv[2]))
    print(f"loaded {int(sys.argv[2]):,} events in {took:.1f}s")

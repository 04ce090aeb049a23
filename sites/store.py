"""The durable registry in ClickHouse: every change is a new row, the latest one wins.

Blocking calls (clickhouse-connect): callers run them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from sites.goals import Goal
from sites.model import ANY, EARLIEST, KEY_MERGE, ApiKey, Site

SITES_TABLE = "sites"
KEYS_TABLE = "api_key_states"
GOALS_TABLE = "goals"
SITE_COLUMNS = [
    "site_id", "name", "public", "allowed_origins", "created_at", "updated_at", "domains",
    "timezone", "public_rate_limit_per_s", "accept_server_events", "website_id", "deleted",
]  # fmt: skip
GOAL_COLUMNS = [
    "site_id", "goal_id", "event_name", "page_path", "display_name", "currency", "deleted",
    "created_at", "updated_at",
]  # fmt: skip
KEY_COLUMNS = [
    "key_id", "site_id", "key_hash", "created_at", "expires_at", "revoked", "updated_at",
    "read_only",
]  # fmt: skip

# Current state of every site not deleted (latest row of each, by updated_at); one
# site's, or (site_id '') every site's.
SITES = (
    "SELECT site_id, name, public, allowed_origins, created_at, domains, timezone,"
    " public_rate_limit_per_s, accept_server_events, website_id"
    f" FROM {SITES_TABLE} FINAL"
    " WHERE ({site_id:String} = '' OR site_id = {site_id:String}) AND NOT deleted"
)
# Current state of a site's goals (or, site_id '', every site's), deleted ones included:
# a cache rebuild removes those.
GOALS = (
    "SELECT site_id, goal_id, event_name, page_path, display_name, currency, deleted,"
    f" created_at FROM {GOALS_TABLE} FINAL"
    " WHERE {site_id:String} = '' OR site_id = {site_id:String}"
    " ORDER BY site_id, created_at, goal_id"
)
# Keys merge rather than replace, by sites/model.py's KEY_MERGE (as the Redis copy
# does, sites/lua/merge_keys.lua): concurrent writes, whatever the order their rows land in, can
# neither bring a revoked key back nor let a share token write.
_AGGREGATE = {ANY: "max", EARLIEST: "min"}  # min() skips NULL: the earliest expiry set
_MERGED_COLUMNS = ["site_id", "key_hash", "created_at", "expires_at", "revoked", "read_only"]
KEYS = (
    "SELECT key_id, "
    + ", ".join(
        f"{_AGGREGATE[KEY_MERGE[c]] if c in KEY_MERGE else 'any'}({c})" for c in _MERGED_COLUMNS
    )
    + f" FROM {KEYS_TABLE}"
    " WHERE {site_id:String} = '' OR site_id = {site_id:String} GROUP BY key_id"
)


class SiteStore:
    """Sites and keys in ClickHouse."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def insert(
        self, sites: Sequence[Site] = (), keys: Sequence[ApiKey] = (), deleted: bool = False
    ) -> None:
        """Write new versions of these records (stamped now); `deleted`: the sites'
        deletions."""
        now = datetime.now(UTC)
        if sites:
            rows = [
                [
                    s.site_id,
                    s.name,
                    s.public,
                    list(s.allowed_origins),
                    s.created_at,
                    now,
                    list(s.domains),
                    s.timezone,
                    s.public_rate_limit_per_s,
                    s.accept_server_events,
                    s.website_id,
                    deleted,
                ]
                for s in sites
            ]
            self._client.insert(SITES_TABLE, rows, column_names=SITE_COLUMNS)
        if keys:
            rows = [
                [
                    k.key_id,
                    k.site_id,
                    k.key_hash,
                    k.created_at,
                    k.expires_at,
                    k.revoked,
                    now,
                    k.read_only,
                ]
                for k in keys
            ]
            self._client.insert(KEYS_TABLE, rows, column_names=KEY_COLUMNS)

    def insert_goals(self, goals: Sequence[Goal]) -> None:
        """Write new versions of these goals (stamped now; a deletion has `deleted`)."""
        now = datetime.now(UTC)
        rows = [
            [
                g.site_id,
                g.goal_id,
                g.event_name,
                g.page_path,
                g.display_name,
                g.currency,
                g.deleted,
                g.created_at,
                now,
            ]
            for g in goals
        ]
        if rows:
            self._client.insert(GOALS_TABLE, rows, column_names=GOAL_COLUMNS)

    def load_goals(self, site_id: str = "") -> list[Goal]:
        """Every site's goals (or only `site_id`'s), oldest first, deleted ones too."""
        return [
            Goal(site, int(goal_id), name, path, shown, cur, bool(deleted), _utc(created))
            for site, goal_id, name, path, shown, cur, deleted, created in self._client.query(
                GOALS, parameters={"site_id": site_id}
            ).result_rows
        ]

    def load(self, site_id: str = "") -> tuple[list[Site], list[ApiKey]]:
        """Every site (or only `site_id`), oldest first, and their keys."""
        only = {"site_id": site_id}
        sites = [
            Site(site, name, bool(public), tuple(origins), _utc(created), tuple(domains), tz, *more)
            for site, name, public, origins, created, domains, tz, *more in self._client.query(
                SITES, parameters=only
            ).result_rows
        ]
        keys = [
            ApiKey(
                key_id,
                site,
                key_hash,
                _utc(created),
                _utc(expires) if expires else None,
                bool(revoked),
                bool(read_only),
            )
            for key_id, site, key_hash, created, expires, revoked, read_only in self._client.query(
                KEYS, parameters=only
            ).result_rows
        ]
        return sorted(sites, key=lambda s: s.created_at), keys


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""The durable registry in ClickHouse: every change is a new row, the latest one wins.

Blocking calls (clickhouse-connect): callers run them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from sites.model import ANY, EARLIEST, KEY_MERGE, ApiKey, Site

SITES_TABLE = "sites"
KEYS_TABLE = "api_key_states"
SITE_COLUMNS = [
    "site_id", "name", "public", "allowed_origins", "created_at", "updated_at", "domains",
    "timezone", "public_rate_limit_per_s", "accept_server_events", "website_id",
]  # fmt: skip
KEY_COLUMNS = [
    "key_id", "site_id", "key_hash", "created_at", "expires_at", "revoked", "updated_at",
    "read_only",
]  # fmt: skip

# Current state of every site (latest row of each, by updated_at); one site's, or (site_id
# '') every site's.
SITES = (
    "SELECT site_id, name, public, allowed_origins, created_at, domains, timezone,"
    " public_rate_limit_per_s, accept_server_events, website_id"
    f" FROM {SITES_TABLE} FINAL"
    " WHERE {site_id:String} = '' OR site_id = {site_id:String}"
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

    def insert(self, sites: Sequence[Site] = (), keys: Sequence[ApiKey] = ()) -> None:
        """Write new versions of these records (stamped now)."""
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

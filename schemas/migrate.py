"""Versioned ClickHouse migrations: numbered `.sql` files with `-- up` and `-- down` halves.

With a cluster name, the statements are rendered for that cluster (schemas/cluster.py) and
one runner at a time applies them (schemas/runner_lock.py); without one, they run as written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from foundation.errors import ConfigError
from schemas import cluster as clustered
from schemas import names
from schemas.entry import VISIT_OPENED
from schemas.event import ENGAGEMENT, PAGEVIEWS
from schemas.runner_lock import RunnerLock
from schemas.sites import WEBSITE_NAMESPACE

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Records which versions ran; ReplacingMergeTree so two processes migrating at once
# (ingest, consume and report all migrate at start) leave one row per version.
CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""
APPLIED_VERSIONS = "SELECT DISTINCT version FROM schema_migrations FINAL"
RECORD_VERSION = (
    "INSERT INTO schema_migrations (version, name) VALUES ({version:UInt32}, {name:String})"
)
FORGET_VERSION = "DELETE FROM schema_migrations WHERE version = {version:UInt32}"
# Raw retention is a setting; re-applied at every start so a changed value takes effect
# (0: raw events are kept forever).
RAW_TTL = "ALTER TABLE events MODIFY TTL toDateTime(ts) + INTERVAL {days} DAY"
NO_RAW_TTL = "ALTER TABLE events REMOVE TTL"
CURRENT_TTL = (
    "SELECT engine_full FROM system.tables"
    " WHERE database = currentDatabase() AND name = {table:String}"
)


@dataclass(frozen=True)
class Migration:
    """One numbered step, its forward statements and the statements that undo it."""

    version: int
    name: str
    up: list[str]
    down: list[str]


def _statements(sql: str) -> list[str]:
    return [part.strip() for part in sql.split(";") if part.strip()]


def _quoted(*names: str) -> str:
    return ", ".join("'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'" for name in names)


def template_values(raw_ttl_days: int) -> dict[str, str]:
    """What the migrations' `{name}` placeholders stand for: the raw events' TTL, and the
    event names schemas/event.py owns (so the views count page views as the API does),
    a visit's start read from its id (schemas/entry.py's rule), the renames of stored
    values to Plausible's names (schemas/names.py), and the namespace of the website_id
    stored sites read (schemas/sites.py's rule)."""
    return {
        "{raw_ttl_days}": str(int(raw_ttl_days or 3650)),
        "{pageview_names}": _quoted(*PAGEVIEWS),
        "{engagement_name}": _quoted(ENGAGEMENT),
        "{visit_opened}": VISIT_OPENED,
        "{names_up}": names.sql_up(),
        "{names_down}": names.sql_down(),
        "{website_namespace}": WEBSITE_NAMESPACE.hex,
    }


def load_migrations(raw_ttl_days: int, cluster: str | None = None) -> list[Migration]:
    """Read the numbered files in order, their placeholders filled (template_values;
    a `raw_ttl_days` of 0, forever, creates the table with the longest TTL and `migrate`
    then removes it). With `cluster`, each statement is replaced by its cluster form."""
    values = template_values(raw_ttl_days)
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        text = path.read_text(encoding="utf-8")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        body = "\n".join(line for line in text.splitlines() if not _is_prose(line))
        up, _, down = body.partition("-- down")
        found.append(
            Migration(
                version=int(path.name[:4]),
                name=path.stem,
                up=_for(cluster, _statements(up.replace("-- up", ""))),
                down=_for(cluster, _statements(down)),
            )
        )
    return found


def _for(cluster: str | None, statements: list[str]) -> list[str]:
    if cluster is None:
        return statements
    return [
        rendered for statement in statements for rendered in clustered.render(statement, cluster)
    ]


def _is_prose(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("--") and stripped not in ("-- up", "-- down")


def latest_version() -> int:
    """The newest migration's version (the schema `migrate` brings a database to)."""
    return max(m.version for m in load_migrations(raw_ttl_days=1))


def applied_versions(client: Client, cluster: str | None = None) -> set[int]:
    """Versions already applied to the client's database (on a cluster, once this server's
    replica of the ledger has caught up with the others)."""
    if cluster is None:
        client.command(CREATE_LEDGER)
    else:
        client.command(clustered.ledger(cluster))
        client.command(clustered.SYNC_LEDGER)
    return {int(row[0]) for row in client.query(APPLIED_VERSIONS).result_rows}


def migrate(client: Client, raw_ttl_days: int, cluster: str | None = None) -> list[int]:
    """Apply every pending migration in order; return the versions applied now.

    On a cluster, a current schema costs two reads and no DDL; otherwise the runner holds
    the migration lock while it reads the ledger and applies what is missing."""
    if cluster is None:
        _check_layout(client, None)
        return _migrate(client, raw_ttl_days, None, None)
    if _current(client, raw_ttl_days, cluster):
        return []
    _prepare(client, cluster)
    with RunnerLock(client, cluster) as lock:
        return _migrate(client, raw_ttl_days, cluster, lock.renew)


def _migrate(
    client: Client, raw_ttl_days: int, cluster: str | None, renew: Callable[[], None] | None
) -> list[int]:
    done = applied_versions(client, cluster)
    applied = []
    for migration in load_migrations(raw_ttl_days, cluster):
        if migration.version in done:
            continue
        for statement in migration.up:
            client.command(statement)
            if renew:
                renew()
        client.command(
            RECORD_VERSION,
            parameters={"version": migration.version, "name": migration.name},
            settings=clustered.LEDGER_INSERT_SETTINGS if cluster else None,
        )
        applied.append(migration.version)
        log.info("applied migration %s", migration.name)
    _apply_raw_ttl(client, raw_ttl_days, cluster)
    return applied


def rollback(
    client: Client, to_version: int, raw_ttl_days: int, cluster: str | None = None
) -> list[int]:
    """Undo applied migrations above `to_version`, newest first; return the versions undone."""
    if cluster is None:
        _check_layout(client, None)
        return _rollback(client, to_version, raw_ttl_days, None, None)
    _prepare(client, cluster)
    with RunnerLock(client, cluster) as lock:
        return _rollback(client, to_version, raw_ttl_days, cluster, lock.renew)


def _rollback(
    client: Client,
    to_version: int,
    raw_ttl_days: int,
    cluster: str | None,
    renew: Callable[[], None] | None,
) -> list[int]:
    done = applied_versions(client, cluster)
    undone = []
    for migration in reversed(load_migrations(raw_ttl_days, cluster)):
        if migration.version <= to_version or migration.version not in done:
            continue
        for statement in migration.down:
            client.command(statement)
            if renew:
                renew()
        client.command(
            FORGET_VERSION,
            parameters={"version": migration.version},
            settings=clustered.LEDGER_DELETE_SETTINGS if cluster else None,
        )
        undone.append(migration.version)
        log.info("rolled back migration %s", migration.name)
    return undone


def _current(client: Client, raw_ttl_days: int, cluster: str) -> bool:
    """Whether a cluster's schema needs nothing. Read without the lock: a stale replica can
    only miss versions, which sends the runner the long way."""
    try:
        done = {int(row[0]) for row in client.query(APPLIED_VERSIONS).result_rows}
    except DatabaseError:
        return False  # no ledger yet
    wanted = {migration.version for migration in load_migrations(raw_ttl_days)}
    return wanted <= done and _ttl_change(client, raw_ttl_days, cluster) is None


def _prepare(client: Client, cluster: str) -> None:
    """The database on every server of the cluster, holding a cluster's tables or none."""
    database = str(client.query("SELECT currentDatabase()").result_rows[0][0])
    client.command(clustered.create_database(database, cluster))
    _check_layout(client, cluster)


def _check_layout(client: Client, cluster: str | None) -> None:
    """Refuse a database whose tables were made for the other layout: a Distributed
    `events` for one server, a one-server `events` where the Distributed one goes."""
    rows = client.query(clustered.TABLE_ENGINE, parameters={"table": "events"}).result_rows
    if not rows or (rows[0][0] == "Distributed") == (cluster is not None):
        return
    if cluster is None:
        raise ConfigError(
            "this database holds a cluster's tables: set HITSTREAM_CLICKHOUSE_CLUSTER"
        )
    raise ConfigError(
        f"this database was migrated for one server ({rows[0][0]} events):"
        " HITSTREAM_CLICKHOUSE_CLUSTER needs a database of its own"
    )


def _ttl_change(client: Client, days: int, cluster: str | None) -> str | None:
    """The statement that brings the raw events' TTL to `days` (0: none), or None."""
    table = "events" if cluster is None else clustered.local("events")
    rows = client.query(CURRENT_TTL, parameters={"table": table}).result_rows
    if not rows:
        return None
    engine = str(rows[0][0])
    if not days:
        return NO_RAW_TTL if " TTL " in engine else None
    # ClickHouse shows the stored TTL as `toIntervalDay(N)`.
    if re.search(rf"toIntervalDay\({int(days)}\)", engine):
        return None
    return RAW_TTL.format(days=int(days))


def _apply_raw_ttl(client: Client, days: int, cluster: str | None) -> None:
    statement = _ttl_change(client, days, cluster)
    if statement is None:
        return
    for rendered in _for(cluster, [statement]):
        client.command(rendered)
    if days:
        log.info("raw events TTL set to %d days", days)
    else:
        log.info("raw events are kept forever")

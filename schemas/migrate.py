"""Versioned ClickHouse migrations: numbered `.sql` files with `-- up` and `-- down` halves."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

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
    "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
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


def load_migrations(raw_ttl_days: int) -> list[Migration]:
    """Read the numbered files in order; `{raw_ttl_days}` is the only template value
    (0, forever, creates the table with the longest TTL; `migrate` then removes it)."""
    raw_ttl_days = raw_ttl_days or 3650
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        text = path.read_text(encoding="utf-8").replace("{raw_ttl_days}", str(int(raw_ttl_days)))
        body = "\n".join(line for line in text.splitlines() if not _is_prose(line))
        up, _, down = body.partition("-- down")
        found.append(
            Migration(
                version=int(path.name[:4]),
                name=path.stem,
                up=_statements(up.replace("-- up", "")),
                down=_statements(down),
            )
        )
    return found


def _is_prose(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("--") and stripped not in ("-- up", "-- down")


def latest_version() -> int:
    """The newest migration's version (the schema `migrate` brings a database to)."""
    return max(m.version for m in load_migrations(raw_ttl_days=1))


def applied_versions(client: Client) -> set[int]:
    """Versions already applied to the client's database."""
    client.command(CREATE_LEDGER)
    return {int(row[0]) for row in client.query(APPLIED_VERSIONS).result_rows}


def migrate(client: Client, raw_ttl_days: int) -> list[int]:
    """Apply every pending migration in order; return the versions applied now."""
    done = applied_versions(client)
    applied = []
    for migration in load_migrations(raw_ttl_days):
        if migration.version in done:
            continue
        for statement in migration.up:
            client.command(statement)
        client.command(
            RECORD_VERSION, parameters={"version": migration.version, "name": migration.name}
        )
        applied.append(migration.version)
        log.info("applied migration %s", migration.name)
    _apply_raw_ttl(client, raw_ttl_days)
    return applied


def rollback(client: Client, to_version: int, raw_ttl_days: int) -> list[int]:
    """Undo applied migrations above `to_version`, newest first; return the versions undone."""
    done = applied_versions(client)
    undone = []
    for migration in reversed(load_migrations(raw_ttl_days)):
        if migration.version <= to_version or migration.version not in done:
            continue
        for statement in migration.down:
            client.command(statement)
        client.command(FORGET_VERSION, parameters={"version": migration.version})
        undone.append(migration.version)
        log.info("rolled back migration %s", migration.name)
    return undone


def _apply_raw_ttl(client: Client, days: int) -> None:
    rows = client.query(CURRENT_TTL).result_rows
    if not rows:
        return
    if not days:
        if " TTL " in str(rows[0][0]):
            client.command(NO_RAW_TTL)
            log.info("raw events are kept forever")
        return
    # ClickHouse shows the stored TTL as `toIntervalDay(N)`.
    if re.search(rf"toIntervalDay\({int(days)}\)", str(rows[0][0])):
        return
    client.command(RAW_TTL.format(days=int(days)))
    log.info("raw events TTL set to %d days", days)

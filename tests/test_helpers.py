"""The migrated template (tests/helpers.py): a copy is the database migrations make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client

from foundation.settings import Settings
from hitstream.connections import clickhouse_client
from schemas.migrate import latest_version, migrate
from tests.helpers import MigratedTemplate


def _schema(admin: Client, database: str) -> dict[str, Any]:
    rows = admin.query(
        "SELECT name, engine, create_table_query FROM system.tables WHERE database = {d:String}",
        parameters={"d": database},
    ).result_rows
    tables = {
        str(name): (engine, str(create).replace(database, "DB")) for name, engine, create in rows
    }
    ledger = admin.query(
        f"SELECT version, name FROM `{database}`.schema_migrations FINAL ORDER BY version"
    ).result_rows
    return {"tables": tables, "ledger": ledger}


def test_a_copy_of_the_template_is_what_the_migrations_make_and_holds_no_rows(
    template: MigratedTemplate, chdb_admin: Client, make_settings: Callable[..., Settings]
) -> None:
    migrated = make_settings()
    copied = make_settings(clickhouse_database=migrated.clickhouse_database + "_copy")
    conn = clickhouse_client(migrated)
    try:
        migrate(conn, migrated.raw_ttl_days)
    finally:
        conn.close()
    assert template.copy_if_empty(copied.clickhouse_database)
    assert _schema(chdb_admin, copied.clickhouse_database) == _schema(
        chdb_admin, migrated.clickhouse_database
    )
    assert _schema(chdb_admin, copied.clickhouse_database)["ledger"][-1][0] == latest_version()
    assert not chdb_admin.query(
        f"SELECT 1 FROM `{copied.clickhouse_database}`.events LIMIT 1"
    ).result_rows


def test_a_database_that_holds_tables_is_left_alone(
    template: MigratedTemplate, chdb_admin: Client, settings: Settings, ch: Client
) -> None:
    ch.command("CREATE TABLE mine (x UInt8) ENGINE = Memory")
    assert not template.copy_if_empty(settings.clickhouse_database)
    assert template.tables_of(settings.clickhouse_database) == ["mine"]


def test_the_app_finds_nothing_to_migrate_in_a_copy(
    client: Any, settings: Settings, ch: Client
) -> None:
    assert client.get("/health").status_code == 200
    assert migrate(ch, settings.raw_ttl_days) == []

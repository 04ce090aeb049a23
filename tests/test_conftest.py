"""The markers tests get from their fixtures, and the engines kept from unmarked tests."""

from __future__ import annotations

import clickhouse_connect
import pytest
import redis
from clickhouse_connect.driver.client import Client

from tests.helpers import free_port


def test_an_unmarked_test_cannot_reach_redis() -> None:
    with pytest.raises(RuntimeError, match="not marked `redis`"):
        redis.Redis(port=free_port()).ping()


def test_an_unmarked_test_cannot_open_clickhouse() -> None:
    # An address nothing listens on, and a chdb path (this process may open only one).
    with pytest.raises(Exception, match="not marked `clickhouse`"):
        clickhouse_connect.get_client(dsn="http://127.0.0.1:9")
    with pytest.raises(Exception, match="not marked `clickhouse`"):
        clickhouse_connect.get_client(dsn="chdb:///nonexistent/never-opened")


def test_a_test_is_marked_by_the_engines_its_fixtures_reach(
    request: pytest.FixtureRequest, redis_conn: redis.Redis
) -> None:
    assert request.node.get_closest_marker("redis") is not None
    assert request.node.get_closest_marker("clickhouse") is None
    assert redis_conn.ping()


def test_an_app_test_is_marked_for_both_engines(request: pytest.FixtureRequest, ch: Client) -> None:
    assert {m.name for m in request.node.iter_markers()} >= {"redis", "clickhouse"}
    assert ch.command("SELECT 1") == 1


@pytest.mark.e2e
def test_an_e2e_test_is_marked_for_the_engines_its_processes_run(
    request: pytest.FixtureRequest,
) -> None:
    assert {m.name for m in request.node.iter_markers()} >= {"e2e", "redis", "clickhouse"}

"""The migration lease: taken when free, waited for while live, taken over when dead."""

from __future__ import annotations

from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from schemas.runner_lock import CREATE_LOCK, TAKE, MigrationLockError, RunnerLock
from tests.schemas.cluster_fakes import FakeCluster, Lease


def lock(server: FakeCluster, **kwargs: Any) -> RunnerLock:
    """A runner's lock on the fake server, with the server's clock as its own."""
    kwargs.setdefault("sleep", server.sleep)
    return RunnerLock(cast(Client, server), "hitstream", clock=lambda: float(server.now), **kwargs)


def test_a_free_lease_is_taken_and_given_back() -> None:
    server = FakeCluster()
    with lock(server) as held:
        assert server.lease is not None and server.lease.holder == held.holder
    assert server.lease is None
    assert server.sent()[:2] == [CREATE_LOCK.format(cluster="hitstream"), TAKE]


def test_a_live_holder_is_waited_for() -> None:
    server = FakeCluster(lease=Lease("other", 1_700_000_000))

    def other_finishes(seconds: float) -> None:
        server.sleep(seconds)
        if server.now >= 1_700_000_030:
            server.lease = None  # the other runner released it

    runner = lock(server, poll_s=5, sleep=other_finishes)
    runner.acquire()
    assert server.lease is not None and server.lease.holder == runner.holder
    assert server.now == 1_700_000_030


def test_a_dead_holder_is_taken_over() -> None:
    server = FakeCluster(now=1_700_001_000, lease=Lease("dead", 1_700_000_000))
    runner = lock(server, lease_s=900)
    runner.acquire()
    assert server.lease is not None and server.lease.holder == runner.holder


def test_waiting_ends_with_an_error_while_the_holder_renews() -> None:
    server = FakeCluster(lease=Lease("busy", 1_700_000_000))

    def holder_renews(seconds: float) -> None:
        server.sleep(seconds)
        assert server.lease is not None
        server.lease.taken_at = server.now

    runner = lock(server, wait_s=60, poll_s=10, sleep=holder_renews)
    with pytest.raises(MigrationLockError, match="busy"):
        runner.acquire()


def test_a_runner_whose_lease_was_taken_over_stops() -> None:
    server = FakeCluster()
    runner = lock(server, lease_s=100)
    runner.acquire()
    server.now += 200
    server.lease = Lease("successor", server.now)
    with pytest.raises(MigrationLockError, match="successor"):
        runner.renew()


def test_renewals_keep_the_lease_young() -> None:
    server = FakeCluster()
    runner = lock(server, lease_s=100)
    runner.acquire()
    for _ in range(30):
        server.now += 5
        runner.renew()
    assert server.lease is not None and server.now - server.lease.taken_at < 100


def test_other_errors_are_not_taken_for_a_held_lease() -> None:
    class Refusing(FakeCluster):
        def command(self, cmd: str, *args: Any, **kwargs: Any) -> None:
            if cmd == TAKE:
                raise DatabaseError("ACCESS_DENIED", code=497)
            super().command(cmd, *args, **kwargs)

    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        lock(Refusing()).acquire()

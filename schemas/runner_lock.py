"""One migration runner at a time on a cluster: a lease kept in Keeper by a KeeperMap table.

Every `report` and `consume` process migrates at start, and two runners sending ON CLUSTER
DDL at once would interleave (one dropping a view the other has just created). So on a
cluster a runner takes the lease before it reads the ledger and gives it back at the end.
KeeperMap stores its rows in Keeper itself, and with `keeper_map_strict_mode = 1` an INSERT
of a key that exists fails instead of overwriting: taking the lease is one linearizable
create in Keeper, the one compare-and-set a query can reach (Keeper's lock recipes are not
callable from SQL, and no MergeTree table refuses a duplicate row).

A holder renews the lease as it works; a lease silent for LEASE_S belonged to a runner that
died and is taken over by a strict DELETE naming its holder and its time, so of two runners
taking over at once one wins. A runner that finds its lease gone stops before its next
statement. Needs ClickHouse 23.8 or later and `<keeper_map_path_prefix>` in the servers'
configuration (deploy/clickhouse-cluster/config.d/cluster.xml).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Final, NamedTuple

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from foundation.errors import HitstreamError
from schemas.cluster import identifier

log = logging.getLogger(__name__)

# A statement may run this long without a renewal (ON CLUSTER DDL waits at most
# distributed_ddl_task_timeout, 180 s by default; 0013's copy of daily_paths runs longer).
LEASE_S: Final = 900.0
# How long a runner waits for another one before it gives up (a dead holder's lease
# expires within it).
WAIT_S: Final = 1200.0
POLL_S: Final = 2.0
# ClickHouse's code for a refusal by Keeper: here, the lease's key exists already.
KEEPER_EXCEPTION: Final = 999

# The path is per database, so deployments sharing a cluster have a lease each.
CREATE_LOCK: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations_lock ON CLUSTER {cluster}
(
    name     String,
    holder   String,
    taken_at DateTime
)
ENGINE = KeeperMap(concat('/hitstream/', currentDatabase(), '/schema_migrations_lock'))
PRIMARY KEY name
"""
TAKE: Final = (
    "INSERT INTO schema_migrations_lock (name, holder, taken_at)"
    " VALUES ('migrate', {holder:String}, now())"
)
# Times travel as Unix seconds: a DateTime read back and bound again could shift by the
# client's time zone and then match nothing.
HOLDER: Final = (
    "SELECT holder, toUnixTimestamp(taken_at), dateDiff('second', taken_at, now())"
    " FROM schema_migrations_lock WHERE name = 'migrate'"
)
RENEW: Final = (
    "ALTER TABLE schema_migrations_lock UPDATE taken_at = now()"
    " WHERE name = 'migrate' AND holder = {holder:String}"
)
TAKE_OVER: Final = (
    "DELETE FROM schema_migrations_lock WHERE name = 'migrate'"
    " AND holder = {holder:String} AND toUnixTimestamp(taken_at) = {taken_at:UInt32}"
)
RELEASE: Final = (
    "DELETE FROM schema_migrations_lock WHERE name = 'migrate' AND holder = {holder:String}"
)
# Strict: an INSERT of a held key fails; a DELETE or UPDATE applies only if the rows it
# read are unchanged when it writes.
STRICT: Final = {"keeper_map_strict_mode": 1}


class MigrationLockError(HitstreamError):
    """The migration lease could not be taken in time, or was taken over while held."""


class Holder(NamedTuple):
    """Who holds the lease, since when (Unix seconds) and how long ago it was renewed."""

    name: str
    taken_at: int
    age_s: int


class RunnerLock:
    """The cluster's migration lease, held for a `with` block."""

    def __init__(
        self,
        client: Client,
        cluster: str,
        *,
        lease_s: float = LEASE_S,
        wait_s: float = WAIT_S,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._cluster = identifier(cluster)
        self._lease_s, self._wait_s, self._poll_s = lease_s, wait_s, poll_s
        self._clock, self._sleep = clock, sleep
        self._renewed = 0.0
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> RunnerLock:
        self._client.command(CREATE_LOCK.format(cluster=self._cluster))
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lease, waiting for a live holder and taking over from a dead one."""
        deadline = self._clock() + self._wait_s
        while not self._take():
            held = self.held()
            if self._clock() >= deadline:
                raise MigrationLockError(
                    f"another migration runner ({held.name if held else 'unknown'}) holds the"
                    f" lock; waited {self._wait_s:.0f} s"
                )
            if held is not None and held.age_s >= self._lease_s:
                log.warning(
                    "taking over the migration lock of %s, silent for %d s", held.name, held.age_s
                )
                self._client.command(
                    TAKE_OVER,
                    parameters={"holder": held.name, "taken_at": held.taken_at},
                    settings=STRICT,
                )
            else:
                log.info("waiting for the migration runner %s", held.name if held else "?")
            self._sleep(self._poll_s)
        self._renewed = self._clock()
        log.info("migration lock taken by %s", self.holder)

    def renew(self) -> None:
        """Keep the lease (at most every tenth of it); raise if another runner took it."""
        if self._clock() - self._renewed < self._lease_s / 10:
            return
        self._client.command(RENEW, parameters={"holder": self.holder}, settings=STRICT)
        held = self.held()
        if held is None or held.name != self.holder:
            raise MigrationLockError(
                f"the migration lock was taken over by {held.name if held else 'nobody'}:"
                " this runner stops; the other one carries on"
            )
        self._renewed = self._clock()

    def release(self) -> None:
        """Give the lease back (if this fails, it expires after LEASE_S)."""
        try:
            self._client.command(RELEASE, parameters={"holder": self.holder}, settings=STRICT)
        except DatabaseError as exc:
            log.warning("could not release the migration lock (it expires): %s", exc)

    def held(self) -> Holder | None:
        """The lease's holder, or None when it is free."""
        rows = self._client.query(HOLDER).result_rows
        return Holder(str(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def _take(self) -> bool:
        try:
            self._client.command(TAKE, parameters={"holder": self.holder}, settings=STRICT)
        except DatabaseError as exc:
            if exc.code != KEEPER_EXCEPTION:
                raise
            return False
        return True

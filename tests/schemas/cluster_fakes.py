"""A stand-in for a ClickHouse cluster's answers, for the migration runner's protocol.

No ClickHouse server that can replicate runs on these machines (chdb cannot), so the
runner's order of work and its lease are checked against this recorder: it keeps the
lease's one KeeperMap row as strict mode does (an INSERT of a held key fails with Keeper's
code) and answers the ledger and system.tables reads from fixed rows. The SQL it is sent is
parsed by chdb in tests/schemas/test_cluster.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from clickhouse_connect.driver.exceptions import DatabaseError

from schemas import runner_lock


@dataclass
class Lease:
    holder: str
    taken_at: int


@dataclass
class FakeCluster:
    """Records commands; answers reads; keeps the lease row on a clock of its own."""

    now: int = 1_700_000_000
    lease: Lease | None = None
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    commands: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = field(
        default_factory=list
    )

    def command(
        self,
        cmd: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        self.commands.append((cmd, parameters, settings))
        holder = (parameters or {}).get("holder")
        strict = settings == runner_lock.STRICT
        if cmd == runner_lock.TAKE:
            assert strict
            if self.lease is not None:
                raise DatabaseError("Coordination error: Node exists", code=999)
            self.lease = Lease(str(holder), self.now)
        elif cmd == runner_lock.RENEW and self.lease and self.lease.holder == holder:
            self.lease.taken_at = self.now
        elif cmd == runner_lock.TAKE_OVER and self.lease and self.lease.holder == holder:
            assert strict and parameters is not None
            if self.lease.taken_at == parameters["taken_at"]:
                self.lease = None
        elif cmd == runner_lock.RELEASE and self.lease and self.lease.holder == holder:
            self.lease = None

    def query(self, sql: str, parameters: dict[str, Any] | None = None, **_: Any) -> Any:
        if sql == runner_lock.HOLDER:
            lease = self.lease
            rows = [(lease.holder, lease.taken_at, self.now - lease.taken_at)] if lease else []
            return SimpleNamespace(result_rows=rows)
        key = sql if parameters is None else f"{sql} {sorted(parameters.items())}"
        return SimpleNamespace(result_rows=self.rows.get(key, []))

    def answer(self, sql: str, rows: list[tuple[Any, ...]], **parameters: Any) -> None:
        """Rows that a read of `sql` with these parameters returns."""
        key = sql if not parameters else f"{sql} {sorted(parameters.items())}"
        self.rows[key] = rows

    def sleep(self, seconds: float) -> None:
        """Time passes on the server's clock (the lease's ages are the server's)."""
        self.now += int(seconds)

    def sent(self) -> list[str]:
        return [cmd for cmd, _, _ in self.commands]

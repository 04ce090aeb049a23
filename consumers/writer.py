"""Writing a batch as recorded inserts: bisected around rejected rows, which are retried,
then dead-lettered."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from consumers.calls import SinkCalls
from consumers.deadletter import DeadLetter
from consumers.outcome import Outcome
from consumers.pending import PendingEntries
from consumers.plans import Plan, Plans
from consumers.retries import RetryPolicy
from consumers.sink import ClickHouseSink, batch_token
from foundation.errors import RowsRejected
from foundation.metrics import Metrics
from schemas.entry import Entry

log = logging.getLogger(__name__)


class BatchWriter:
    """Inserts entries into ClickHouse, each insert recorded as a plan before it is sent."""

    def __init__(
        self,
        stream: str,
        sink: ClickHouseSink,
        calls: SinkCalls,
        plans: Plans,
        pending: PendingEntries,
        rejected: RetryPolicy,
        metrics: Metrics,
    ) -> None:
        self._stream = stream
        self._sink = sink
        self._calls = calls
        self._plans = plans
        self._pending = pending
        # A row ClickHouse rejects alone gets the policy's attempts, then the dead letters.
        self._rejected = rejected
        self._metrics = metrics

    def plan_of(self, items: Sequence[Entry]) -> Plan:
        """The insert of `items`, in this order, named by their stream IDs."""
        ids = tuple(item.entry_id for item in items)
        return Plan(batch_token(self._stream, ids), ids)

    async def write(self, items: list[Entry], outcome: Outcome, plan: Plan | None = None) -> None:
        """Record the plan, insert; on rejected rows, bisect until each bad row is alone."""
        if not items:
            return
        if plan is None:
            plan = self.plan_of(items)
            await self._plans.record(plan)
        outcome.tokens.append(plan.token)
        token = plan.token
        try:
            if len(items) > 1:
                await self.insert(items, token)
            else:
                await self._rejected.call(lambda: self.insert(items, token))
            return
        except RowsRejected as exc:
            if len(items) == 1:
                outcome.letters.append(await self._dead_letter(items[0], exc))
                return
        await self._bisect(items, plan, outcome)

    async def insert(self, items: Sequence[Entry], token: str) -> None:
        """One insert of `items` under `token`, retried while ClickHouse is away."""
        rows = [item.row for item in items]
        started = time.perf_counter()
        await self._calls(items, lambda: self._sink.insert(rows, token))
        self._written(len(rows), time.perf_counter() - started)

    async def _bisect(self, items: list[Entry], plan: Plan, outcome: Outcome) -> None:
        """Replace a rejected insert (nothing written) by its halves', and write each."""
        middle = len(items) // 2
        halves = [items[:middle], items[middle:]]
        plans = [self.plan_of(half) for half in halves]
        await self._plans.split(plan, plans)
        for half, half_plan in zip(halves, plans, strict=True):
            await self.write(half, outcome, half_plan)

    async def _dead_letter(self, item: Entry, error: RowsRejected) -> DeadLetter:
        counts = await self._pending.delivery_counts([item.entry_id])
        attempts = self._rejected.attempts
        message = f"{error} (after {attempts} attempts)"
        return DeadLetter(item.entry_id, item.fields, message, counts.get(item.entry_id, 1))

    def _written(self, rows: int, seconds: float) -> None:
        self._metrics.batch_rows.observe(rows)
        self._metrics.batch_seconds.observe(seconds)
        self._metrics.events_written.inc(rows)
        log.debug("inserted %d rows in %.1f ms", rows, seconds * 1000)

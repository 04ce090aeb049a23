"""Redelivered entries of a recorded insert are written again as that insert, cut as first."""

from __future__ import annotations

import logging

from consumers.deadletter import DeadLetter
from consumers.outcome import Outcome
from consumers.pending import PendingEntries
from consumers.plans import Plan, Plans
from consumers.writer import BatchWriter
from schemas.entry import Entry

log = logging.getLogger(__name__)


def given_up(plan_items: list[Entry], deliveries: int) -> list[DeadLetter]:
    """Dead letters for an insert that a crash loop keeps interrupting."""
    return [
        DeadLetter(
            item.entry_id,
            item.fields,
            f"delivered {deliveries} times without being written "
            "(an interrupted insert: it may be partly stored)",
            deliveries,
        )
        for item in plan_items
    ]


class PlanReplay:
    """Re-sends every recorded insert that redelivered entries were part of.

    The same token makes ClickHouse skip the tables that already took the insert and
    write the ones a crash left without it.
    """

    def __init__(
        self, plans: Plans, pending: PendingEntries, writer: BatchWriter, max_deliveries: int
    ) -> None:
        self._plans = plans
        self._pending = pending
        self._writer = writer
        self._max_deliveries = max_deliveries

    async def __call__(
        self, items: list[Entry], counts: dict[bytes, int], outcome: Outcome
    ) -> list[Entry]:
        """Replay the plans touching `items`; return the entries no plan holds."""
        plans = await self._plans.touching(item.entry_id for item in items)
        if not plans:
            return items
        in_hand = {item.entry_id: item for item in items}
        elsewhere = [i for plan in plans for i in plan.ids if i not in in_hand]
        fetched = await self._pending.fetch(elsewhere)
        for plan in plans:
            await self._replay(plan, in_hand, fetched, counts, outcome)
        held = {i for plan in plans for i in plan.ids}
        return [item for item in items if item.entry_id not in held]

    async def _replay(
        self,
        plan: Plan,
        in_hand: dict[bytes, Entry],
        fetched: dict[bytes, Entry],
        counts: dict[bytes, int],
        outcome: Outcome,
    ) -> None:
        plan_items = [
            in_hand.get(i) or fetched[i] for i in plan.ids if i in in_hand or i in fetched
        ]
        outcome.acks += [i for i in plan.ids if i not in in_hand]
        deliveries = max((counts.get(i, 1) for i in plan.ids if i in in_hand), default=1)
        if deliveries > self._max_deliveries:
            # A crash loop on this insert: give it up, whole, rather than forever.
            outcome.tokens.append(plan.token)
            outcome.letters += given_up(plan_items, deliveries)
            return
        log.info("replaying an interrupted insert of %d entries as first cut", len(plan_items))
        await self._writer.write(plan_items, outcome, plan)

"""What processing one batch decides, committed at its end: acks, dead letters, done plans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from consumers.deadletter import DeadLetter
from schemas.entry import Entry, decode


@dataclass
class Outcome:
    """What one call of `BatchProcessor.process` commits at its end, in one transaction."""

    acks: list[bytes] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


def decode_batch(
    ids: Sequence[bytes], entries: Sequence[dict[bytes, bytes]], outcome: Outcome
) -> list[Entry]:
    """The batch's hitstream events; any other entry goes to the dead letters."""
    items: list[Entry] = []
    for entry_id, fields in zip(ids, entries, strict=True):
        item = decode(entry_id, fields)
        if item is not None:
            items.append(item)
        else:
            outcome.letters.append(DeadLetter(entry_id, fields, "not a hitstream event entry", 1))
    return items


def without_exhausted(
    items: list[Entry], counts: dict[bytes, int], limit: int, outcome: Outcome
) -> list[Entry]:
    """Entries delivered more than `limit` times (crash loops) are given up."""
    keep = []
    for item in items:
        deliveries = counts.get(item.entry_id, 1)
        if deliveries <= limit:
            keep.append(item)
            continue
        message = f"delivered {deliveries} times without being written"
        outcome.letters.append(DeadLetter(item.entry_id, item.fields, message, deliveries))
    return keep

"""The first steps of a batch, alone: decoding its entries, giving up crash loops."""

from __future__ import annotations

from consumers.outcome import Outcome, decode_batch, without_exhausted
from schemas.entry import decode
from tests.helpers import event, stream_entry


def test_entries_that_are_not_ours_go_to_the_dead_letters() -> None:
    ours = stream_entry(event("s"))
    outcome = Outcome()
    items = decode_batch([b"1-0", b"1-1"], [ours, {b"something": b"else"}], outcome)
    assert [item.entry_id for item in items] == [b"1-0"]
    [letter] = outcome.letters
    assert letter.source_id == b"1-1" and letter.error == "not a hitstream event entry"
    assert letter.deliveries == 1


def test_entries_delivered_too_often_are_given_up() -> None:
    items = [decode(f"1-{i}".encode(), stream_entry(event("s"))) for i in range(3)]
    assert all(item is not None for item in items)
    entries = [item for item in items if item is not None]
    outcome = Outcome()
    counts = {b"1-0": 5, b"1-1": 6}  # 1-2 not pending any more: counted as one delivery
    kept = without_exhausted(entries, counts, 5, outcome)
    assert [item.entry_id for item in kept] == [b"1-0", b"1-2"]
    [letter] = outcome.letters
    assert letter.source_id == b"1-1" and letter.deliveries == 6
    assert letter.error == "delivered 6 times without being written"

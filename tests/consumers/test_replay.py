"""The replay step's pure part: an insert given up after a crash loop."""

from __future__ import annotations

from consumers.replay import given_up
from schemas.entry import decode
from tests.helpers import event, stream_entry


def test_a_crash_looping_insert_is_dead_lettered_whole() -> None:
    items = [decode(f"1-{i}".encode(), stream_entry(event("s"))) for i in range(2)]
    letters = given_up([item for item in items if item is not None], 7)
    assert [letter.source_id for letter in letters] == [b"1-0", b"1-1"]
    assert all(letter.deliveries == 7 for letter in letters)
    assert letters[0].error == (
        "delivered 7 times without being written (an interrupted insert: it may be partly stored)"
    )

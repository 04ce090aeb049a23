"""The stored-row check alone: which rows are checked, and which are kept."""

from __future__ import annotations

import asyncio

import pytest

from consumers.stored import Key, keys_to_check, unstored, valid_uuid, without_stored
from schemas.entry import Entry, decode
from tests.helpers import event, stream_entry


def entries(*bodies: tuple[str, str | None, bool]) -> list[Entry]:
    """Entries for (site, event_id or None, whether the client chose it)."""
    made = []
    for i, (site, event_id, client_id) in enumerate(bodies):
        body = event(site) if event_id is None else event(site, event_id=event_id)
        item = decode(f"1-{i}".encode(), stream_entry(body, client_id))
        assert item is not None
        made.append(item)
    return made


# Fixed ids: xdist workers must collect the same parameters.
A, B = "0d55b7ea-ace3-44e8-b551-c991600c3c0e", "6f1c2a9e-3b7d-4c55-9e0a-2d8b4f6a1c73"


def test_a_fresh_batch_checks_only_the_ids_clients_chose() -> None:
    items = entries(("s", A, True), ("s", None, False))
    assert keys_to_check(items, check_all=False) == {b"1-0": ("s", A)}
    assert set(keys_to_check(items, check_all=True)) == {b"1-0", b"1-1"}


def test_stored_pairs_and_repeats_in_the_batch_are_dropped() -> None:
    items = entries(("s", A, True), ("s", A, True), ("t", A, True), ("s", B, True))
    checked = keys_to_check(items, check_all=False)
    fresh = unstored(items, checked, stored={("s", B)})
    # The same ID on another site is another event.
    assert [item.entry_id for item in fresh] == [b"1-0", b"1-2"]


def test_nothing_to_check_asks_nothing() -> None:
    asked: list[tuple[set[str], set[str]]] = []

    async def existing(sites: set[str], ids: set[str]) -> set[Key]:
        asked.append((sites, ids))
        return set()

    items = entries(("s", None, False))
    assert asyncio.run(without_stored(items, False, existing)) == items
    assert asked == []


def test_without_stored_asks_for_the_sites_and_ids_at_once() -> None:
    asked: list[tuple[set[str], set[str]]] = []

    async def existing(sites: set[str], ids: set[str]) -> set[Key]:
        asked.append((sites, ids))
        return {("t", B)}

    items = entries(("s", A, True), ("t", B, True))
    fresh = asyncio.run(without_stored(items, True, existing))
    assert [item.entry_id for item in fresh] == [b"1-0"]
    assert asked == [({"s", "t"}, {A, B})]


@pytest.mark.parametrize("text", ["", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", A.replace("-", "")])
def test_only_canonical_uuids_are_valid(text: str) -> None:
    with pytest.raises(ValueError):
        valid_uuid(text)
    assert valid_uuid(A) == A

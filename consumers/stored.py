"""Rows already stored are not inserted again: a batch's (site, event_id) pairs, checked."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from schemas.entry import Entry

log = logging.getLogger(__name__)

Key = tuple[str, str]
# Which of these (site, event ID) pairs are already in ClickHouse.
Existing = Callable[[set[str], set[str]], Awaitable[set[Key]]]


def keys_to_check(items: list[Entry], check_all: bool) -> dict[bytes, Key]:
    """(site, event_id) of each row to check: every row of a redelivered batch, otherwise
    only those whose event_id the client chose. Rows without a valid pair are not checked."""
    checked: dict[bytes, Key] = {}
    for item in items:
        if not (check_all or item.client_id):
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError):
            checked[item.entry_id] = (item.site_id(), valid_uuid(item.event_id))
    return checked


def unstored(items: list[Entry], checked: dict[bytes, Key], stored: set[Key]) -> list[Entry]:
    """`items` without the checked rows stored already or earlier in this batch."""
    seen: set[Key] = set()
    fresh = []
    for item in items:
        key = checked.get(item.entry_id)
        if key is not None:
            if key in stored or key in seen:
                continue
            seen.add(key)
        fresh.append(item)
    return fresh


async def without_stored(items: list[Entry], check_all: bool, existing: Existing) -> list[Entry]:
    """Drop rows whose (site, event_id) is already in ClickHouse or earlier in this batch.

    Event IDs are per site: one site's ID never hides another site's event.
    """
    checked = keys_to_check(items, check_all)
    if not checked:
        return items
    sites = {site for site, _ in checked.values()}
    event_ids = {event_id for _, event_id in checked.values()}
    fresh = unstored(items, checked, await existing(sites, event_ids))
    if len(fresh) < len(items):
        log.info("skipped %d events already stored", len(items) - len(fresh))
    return fresh


def valid_uuid(text: str) -> str:
    """`text` if it is a UUID in its canonical dashed form; ValueError otherwise."""
    parts = text.split("-")
    if [len(p) for p in parts] != [8, 4, 4, 4, 12]:
        raise ValueError(text)
    int("".join(parts), 16)
    return text

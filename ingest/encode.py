"""Accepted events encoded for the stream: defaults filled, the page's URL read, the
visit attributed (ingest/attribution.py), the row written (schemas/entry.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ingest.attribution import referrer_and_source
from schemas import entry
from schemas.event import ENGAGEMENT, EventIn, clickhouse_time, epoch_ms
from schemas.urls import UTM_TAGS, Page, parse_page

# A request's visitors: (site_id, user_id) -> (visitor ID, the salt day it is numbered
# under or 0) (ingest/visitors.py RequestVisitor).
VisitorOf = Callable[[str, str | None], tuple[int, int]]


@dataclass(frozen=True)
class Encoded:
    """One event ready for the stream: its id, site and row, and whether the client chose
    the id (then ingest remembers it, per site, to recognise a retry)."""

    event_id: str
    site_id: str
    row: bytes
    client_id: bool
    # What ingest's script needs to number the event's visitor and tell its visit
    # (ingest/lua/numbers.lua, visits.lua): its visitor (0: none, and engagement events
    # join no visit), time in milliseconds and the salt day its visitor is numbered under
    # (0: not numbered).
    visitor_id: int = 0
    ts_ms: int = 0
    number_day: int = 0

    @property
    def id_bytes(self) -> bytes:
        """The event ID as 16 bytes (the compact form ingest remembers)."""
        return uuid.UUID(self.event_id).bytes


@dataclass(frozen=True, slots=True)
class _Request:
    """What one request's events share, computed once."""

    received_at: datetime
    received: str  # received_at as ClickHouse text
    site_id: str | None
    visitor: VisitorOf | None
    client: entry.ClientColumns


def encode(
    events: Sequence[EventIn],
    received_at: datetime,
    site_id: str | None = None,
    visitor: VisitorOf | None = None,
    client: entry.ClientColumns = entry.UNKNOWN_CLIENT,
) -> list[Encoded]:
    """Fill defaults and encode each event as its stream row (schemas/entry.py).

    `site_id` (from the API key) overrides the body's. `visitor(site_id, user_id)` gives
    each event's visitor ID (ingest/visitors.py); without it, visitor 0 (none). What is
    the same for the whole request (time received, fresh IDs) is computed once.
    """
    request = _Request(received_at, clickhouse_time(received_at), site_id, visitor, client)
    fresh = iter(random_uuids(sum(1 for e in events if e.event_id is None)))
    return [_encoded(e, str(e.event_id) if e.event_id else next(fresh), request) for e in events]


def _encoded(event: EventIn, event_id: str, request: _Request) -> Encoded:
    site = request.site_id or event.site_id or ""
    visitor_id, number_day = (
        request.visitor(site, event.user_id) if request.visitor is not None else (0, 0)
    )
    visits = event.event_type != ENGAGEMENT
    return Encoded(
        event_id,
        site,
        _row(event, event_id, site, visitor_id, request),
        event.event_id is not None,
        visitor_id if visits else 0,
        epoch_ms(event.timestamp or request.received_at),  # exactly the ms the row's ts holds
        number_day if visits else 0,
    )


def _row(event: EventIn, event_id: str, site: str, visitor_id: int, request: _Request) -> bytes:
    """The event's row, its page read from its URL and its visit attributed."""
    page = parse_page(event.url) if event.url else None
    utm = _utm(event, page)
    # The campaign's source: utm_source, else the page's `source` or `ref` parameter.
    campaign = utm.get("utm_source") or (page.source if page and page.source else None)
    referrer, source = referrer_and_source(
        event.referrer or "", page.hostname if page else "", campaign
    )
    return entry.encode_row(
        event_id=event_id,
        site_id=site,
        event_type=event.event_type,
        path=event.path or (page.path if page else "/"),
        user_id=event.user_id or "",
        ts=clickhouse_time(event.timestamp) if event.timestamp else request.received,
        received_at=request.received,
        hostname=page.hostname if page else "",
        referrer=referrer,
        utm=utm,
        props=event.props or {},
        visitor_id=visitor_id,
        client=request.client,
        source=source,
        interactive=event.interactive,
        engagement_ms=event.engagement_ms or 0,
        scroll_depth=event.scroll_depth or 0,
        revenue=(str(event.revenue.amount), event.revenue.currency) if event.revenue else None,
        click_id_param=page.click_id_param if page else "",
    )


def _utm(event: EventIn, page: Page | None) -> dict[str, str]:
    """The UTM tags of the page's URL, each explicit field winning over its query string."""
    utm = dict(page.utm) if page else {}
    for tag in UTM_TAGS:
        explicit = getattr(event, tag)
        if explicit is not None:
            utm[tag] = explicit
    return utm


def random_uuids(count: int) -> list[str]:
    """`count` random (version 4) UUIDs from one read of the OS's random source."""
    raw = bytearray(os.urandom(16 * count))
    ids = []
    for start in range(0, len(raw), 16):
        raw[start + 6] = (raw[start + 6] & 0x0F) | 0x40  # version 4
        raw[start + 8] = (raw[start + 8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw[start : start + 16].hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids

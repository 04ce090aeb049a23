"""The stream entry: how ingest writes an event into the Redis stream and how every
reader (consumers, dead letters, tools) reads one back. The only owner of that format.

An entry has the field ROW_FIELD, the event's JSONEachRow line (the very bytes the
consumer inserts into ClickHouse), and CLIENT_ID_FIELD when the client chose the
event_id (a retry of it must then be recognised). The row's keys come in ROW_KEYS
order, event_id first, so a reader recognises one of our rows and reads its event_id
without parsing the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from foundation.settings import NUMBER_RANKS
from schemas.urls import UTM_TAGS

ROW_FIELD = b"e"
CLIENT_ID_FIELD = b"c"
CLIENT_ID_MARK = b"1"

# The columns of `events` a row fills, in the order they are written (new columns go at
# the end, before the two of the row's tail (TAIL), which must stay last: rows written
# before they existed still decode, and ClickHouse fills their defaults).
ROW_KEYS = (
    "event_id", "site_id", "event_type", "path", "user_id", "ts", "received_at",
    "hostname", "referrer", *UTM_TAGS, "props", "visitor_id",
    "browser", "browser_version", "os", "os_version", "device", "country",
    "source", "interactive", "engagement_ms", "scroll_depth", "revenue_amount",
    "revenue_currency", "click_id_param", "region", "region_name", "city_name", "visitor_no",
    "session_id",
)  # fmt: skip
# A row ends with its visitor's number and its visit's id: TAIL (both 0) until ingest's
# script writes TAIL_FORMAT with both in its place (ingest/lua/append_once.lua receives
# them: visitors are numbered and visits told apart where every replica's events meet,
# in Redis).
TAIL_FORMAT = b'"visitor_no":%d,"session_id":%d}'
TAIL = TAIL_FORMAT % (0, 0)

# A visitor's number (the row's visitor_no; 0: none) is dense per site and salt day, so
# page breakdowns keep a day's visitors as a bitmap (migration 0023): the salt's day (days
# since the epoch) times NUMBER_DAY, plus the stream shard's index times NUMBER_SHARD (a
# site moved to another shard numbers on in a range of its own), plus the visitor's rank
# that day from 1. This is the rule's one statement: ingest's script numbers by it
# (ingest/lua/numbers.lua, given NUMBER_DAY and the shard's base). Only visitors hashed
# under a day's salt are numbered (a signed-in user's ID outlives the day: it is counted
# from its ID), and only under a salt made by a release that numbers (ingest/visitors.py),
# so a day's visitors are all numbered or none.
NUMBER_DAY = 1 << 32
NUMBER_SHARD = NUMBER_RANKS  # 1024 shards (MAX_STREAM_SHARDS) of 2^22 ranks fill a day

# A visit's id (the row's session_id) is the time of the visit's first event in epoch
# milliseconds (0: no visit). This is the rule's one statement: ingest's script assigns
# ids by it (ingest/lua/visits.lua), and ClickHouse reads a visit's start back from the
# id with VISIT_OPENED (migration 0012's `sessions` table through its {visit_opened}
# placeholder; the stats compiler); the view's opener test is its inverse.
VISIT_OPENED = "fromUnixTimestamp64Milli(toInt64(session_id), 'UTC')"


@dataclass(frozen=True, slots=True)
class ClientColumns:
    """What ingest derives from the request about the visitor's software and place
    (never the IP address or the User-Agent themselves); '' where unknown."""

    browser: str = ""
    browser_version: str = ""
    os: str = ""
    os_version: str = ""
    device: str = ""  # Desktop, Mobile, Tablet (schemas/names.py)
    country: str = ""  # ISO 3166-1 alpha-2
    region: str = ""  # ISO 3166-2, e.g. US-CA (ingest/places.py)
    region_name: str = ""  # DB-IP's English name
    city_name: str = ""


UNKNOWN_CLIENT = ClientColumns()

_PREFIX = b'{"event_id":"'
_ID_END = len(_PREFIX) + 36  # a UUID's text form


def encode_row(
    *,
    event_id: str,
    site_id: str,
    event_type: str,
    path: str,
    user_id: str,
    ts: str,
    received_at: str,
    hostname: str = "",
    referrer: str = "",
    utm: Mapping[str, str] | None = None,
    props: Mapping[str, str] | None = None,
    visitor_id: int = 0,
    client: ClientColumns = UNKNOWN_CLIENT,
    source: str = "",
    interactive: bool = True,
    engagement_ms: int = 0,
    scroll_depth: int = 0,
    revenue: tuple[str, str] | None = None,
    click_id_param: str = "",
    visitor_no: int = 0,
    session_id: int = 0,
) -> bytes:
    """An event's row: JSON with ROW_KEYS in order (times as ClickHouse DateTime64 text)."""
    row: dict[str, Any] = {
        "event_id": event_id,
        "site_id": site_id,
        "event_type": event_type,
        "path": path,
        "user_id": user_id,
        "ts": ts,
        "received_at": received_at,
        "hostname": hostname,
        "referrer": referrer,
    }
    tags = utm or {}
    for key in UTM_TAGS:
        row[key] = tags.get(key, "")
    row["props"] = props or {}
    row["visitor_id"] = visitor_id
    row["browser"] = client.browser
    row["browser_version"] = client.browser_version
    row["os"] = client.os
    row["os_version"] = client.os_version
    row["device"] = client.device
    row["country"] = client.country
    row["source"] = source
    row["interactive"] = interactive
    row["engagement_ms"] = engagement_ms
    row["scroll_depth"] = scroll_depth
    amount, currency = revenue or ("0", "")
    row["revenue_amount"] = amount  # decimal text: exact
    row["revenue_currency"] = currency
    row["click_id_param"] = click_id_param
    row["region"] = client.region
    row["region_name"] = client.region_name
    row["city_name"] = client.city_name
    # 0 (TAIL) until ingest's script writes the visitor's number and visit's id instead.
    row["visitor_no"] = visitor_no
    row["session_id"] = session_id
    return orjson.dumps(row)


def fields(row: bytes, client_id: bool = False) -> dict[bytes, bytes]:
    """The fields of the stream entry that carries `row`."""
    if client_id:
        return {ROW_FIELD: row, CLIENT_ID_FIELD: CLIENT_ID_MARK}
    return {ROW_FIELD: row}


@dataclass(frozen=True, slots=True)
class Entry:
    """A stream entry that carries one of our rows."""

    entry_id: bytes
    fields: dict[bytes, bytes]

    @property
    def row(self) -> bytes:
        return self.fields[ROW_FIELD]

    @property
    def event_id(self) -> str:
        return self.row[len(_PREFIX) : _ID_END].decode()

    @property
    def client_id(self) -> bool:
        """True when the client chose the event_id."""
        return CLIENT_ID_FIELD in self.fields

    def site_id(self) -> str:
        """The row's site (parses the row: read it only where needed)."""
        return str(orjson.loads(self.row)["site_id"])


def decode(entry_id: bytes, entry_fields: dict[bytes, bytes]) -> Entry | None:
    """The entry, if it carries one of our rows; None for anything else in the stream."""
    row = entry_fields.get(ROW_FIELD, b"")
    if row.startswith(_PREFIX) and row[_ID_END : _ID_END + 2] == b'",':
        return Entry(entry_id, entry_fields)
    return None

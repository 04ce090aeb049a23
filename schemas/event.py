"""The event as clients send it, its normalisation, and the row it becomes in the stream."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from schemas import entry

# ClickHouse's Date covers 1970..2149; refuse what would be clamped there silently.
MIN_TIMESTAMP = datetime(1970, 1, 2, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(minutes=5)
_RANGE_MESSAGE = "must be between 1970-01-02 and 2100"

# Identifiers that end up in keys, URLs and logs: a safe charset.
SAFE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
# Control characters (C0, DEL, C1), bidirectional overrides and isolates (they make a
# path or user ID display as something else), line separators, lone surrogates.
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


@dataclass(frozen=True)
class TimeWindow:
    """The accepted range of event timestamps: raw retention back, MAX_FUTURE ahead."""

    now: datetime
    retention_days: int

    @property
    def oldest(self) -> datetime:
        return self.now - timedelta(days=self.retention_days)


def _printable(value: str) -> str:
    if _UNSAFE.search(value):
        raise PydanticCustomError(
            "unsafe_chars",
            "must not contain control characters, bidirectional overrides or lone surrogates",
        )
    return value


def normalize_path(raw: str) -> str:
    """Reduce a URL or path to its path: scheme, host (with any user:password), query
    string and fragment are dropped, also from scheme-less forms (`//user:pw@host/p`,
    `user:pw@host/p`), so no credential sent in a URL is stored."""
    candidate = raw.strip()
    if "://" in candidate:
        path = urlsplit(candidate).path
    elif candidate.startswith("//"):
        path = urlsplit("http:" + candidate).path
    else:
        path = candidate.split("#", 1)[0].split("?", 1)[0]
        first, slash, rest = path.partition("/")
        if "@" in first:  # an authority without its scheme: user[:password]@host
            path = slash + rest
    if not path.startswith("/"):
        path = "/" + path
    return path


def _iso_timestamp(value: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp_type", "must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("timestamp_format", "is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise PydanticCustomError("timestamp_offset", "needs a UTC offset, e.g. Z or +02:00")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise PydanticCustomError(
            "timestamp_range", "must be between 1970-01-02 and 2100"
        ) from None


def _uuid(value: Any) -> Any:
    if value is None or isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("uuid_type", "must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PydanticCustomError("uuid_format", "is not a UUID") from None


Timestamp = Annotated[datetime | None, BeforeValidator(_iso_timestamp)]
EventId = Annotated[uuid.UUID | None, BeforeValidator(_uuid)]


class EventIn(BaseModel):
    """One analytics event as accepted by `POST /event` (snake_case or camelCase keys).

    `site_id` may be left out when the API key names the site (`HITSTREAM_INGEST_AUTH=key`).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    site_id: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=SAFE_ID,
        validation_alias=AliasChoices("site_id", "siteId"),
    )
    event_type: StrictStr = Field(
        min_length=1,
        max_length=128,
        pattern=SAFE_ID,
        validation_alias=AliasChoices("event_type", "eventType"),
    )
    path: StrictStr = Field(min_length=1, max_length=2048)
    user_id: StrictStr | None = Field(
        default=None, max_length=256, validation_alias=AliasChoices("user_id", "userId")
    )
    timestamp: Timestamp = Field(default=None, description="ISO 8601 with a UTC offset")
    event_id: EventId = Field(default=None, validation_alias=AliasChoices("event_id", "eventId"))

    @field_validator("user_id")
    @classmethod
    def _printable_user(cls, value: str | None) -> str | None:
        return None if value is None else _printable(value)

    @field_validator("path")
    @classmethod
    def _normalized_path(cls, value: str) -> str:
        return normalize_path(_printable(value))

    @field_validator("timestamp")
    @classmethod
    def _in_window(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        if not MIN_TIMESTAMP <= value < MAX_TIMESTAMP:
            raise PydanticCustomError("timestamp_range", _RANGE_MESSAGE)
        window = info.context.get("window") if isinstance(info.context, dict) else None
        if isinstance(window, TimeWindow):
            if value > window.now + MAX_FUTURE:
                raise PydanticCustomError(
                    "timestamp_future", "is more than 5 minutes in the future"
                )
            if value < window.oldest:
                raise PydanticCustomError(
                    "timestamp_too_old",
                    "is older than the raw retention ({days} days)",
                    {"days": window.retention_days},
                )
        return value


EventBatch = TypeAdapter(list[EventIn])


@dataclass(frozen=True)
class Encoded:
    """One event ready for the stream: its id, site and row, and whether the client chose
    the id (then ingest remembers it, per site, to recognise a retry)."""

    event_id: str
    site_id: str
    row: bytes
    client_id: bool

    @property
    def id_bytes(self) -> bytes:
        """The event ID as 16 bytes (the compact form ingest remembers)."""
        return uuid.UUID(self.event_id).bytes


def _clickhouse_time(moment: datetime) -> str:
    """UTC wall time in the form ClickHouse's DateTime64 parses by default."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(sep=" ", timespec="milliseconds")


def _random_uuids(count: int) -> list[str]:
    """`count` random (version 4) UUIDs from one read of the OS's random source."""
    raw = bytearray(os.urandom(16 * count))
    ids = []
    for start in range(0, len(raw), 16):
        raw[start + 6] = (raw[start + 6] & 0x0F) | 0x40  # version 4
        raw[start + 8] = (raw[start + 8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw[start : start + 16].hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def encode(
    events: Sequence[EventIn], received_at: datetime, site_id: str | None = None
) -> list[Encoded]:
    """Fill defaults and encode each event as its stream row (schemas/entry.py).

    `site_id` (from the API key) overrides the body's. What is the same for the whole
    request (time received, fresh IDs) is computed once.
    """
    received = _clickhouse_time(received_at)
    fresh = iter(_random_uuids(sum(1 for e in events if e.event_id is None)))
    encoded = []
    for event in events:
        event_id = str(event.event_id) if event.event_id else next(fresh)
        site = site_id or event.site_id or ""
        row = entry.encode_row(
            event_id=event_id,
            site_id=site,
            event_type=event.event_type,
            path=event.path,
            user_id=event.user_id or "",
            ts=_clickhouse_time(event.timestamp) if event.timestamp else received,
            received_at=received,
        )
        encoded.append(Encoded(event_id, site, row, event.event_id is not None))
    return encoded

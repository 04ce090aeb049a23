"""The event as clients send it, its normalisation, and the row it becomes in the stream."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    TypeAdapter,
    field_validator,
)
from pydantic_core import PydanticCustomError

# ClickHouse's Date covers 1970..2149; refuse what would be clamped there silently.
MIN_TIMESTAMP = datetime(1970, 1, 2, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)


def _no_control_chars(value: str) -> str:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise PydanticCustomError("control_chars", "must not contain control characters")
    return value


def normalize_path(raw: str) -> str:
    """Reduce a URL or path to its path: scheme, host, query string and fragment are dropped."""
    candidate = raw.strip()
    if "://" in candidate:
        path = urlsplit(candidate).path
    else:
        path = candidate.split("#", 1)[0].split("?", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    return path


class EventIn(BaseModel):
    """One analytics event as accepted by `POST /event` (snake_case or camelCase keys)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    site_id: StrictStr = Field(
        min_length=1, max_length=128, validation_alias=AliasChoices("site_id", "siteId")
    )
    event_type: StrictStr = Field(
        min_length=1, max_length=128, validation_alias=AliasChoices("event_type", "eventType")
    )
    path: StrictStr = Field(min_length=1, max_length=2048)
    user_id: StrictStr | None = Field(
        default=None, max_length=256, validation_alias=AliasChoices("user_id", "userId")
    )
    timestamp: AwareDatetime | None = Field(default=None, strict=True)
    event_id: uuid.UUID | None = Field(
        default=None, strict=True, validation_alias=AliasChoices("event_id", "eventId")
    )

    @field_validator("site_id", "event_type", "user_id")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return None if value is None else _no_control_chars(value)

    @field_validator("path")
    @classmethod
    def _normalized_path(cls, value: str) -> str:
        return normalize_path(_no_control_chars(value))

    @field_validator("timestamp")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None and not MIN_TIMESTAMP <= value < MAX_TIMESTAMP:
            raise PydanticCustomError("timestamp_range", "must be between 1970-01-02 and 2100")
        return value


EventBatch = TypeAdapter(list[EventIn])


def _clickhouse_time(moment: datetime) -> str:
    """UTC wall time in the form ClickHouse's DateTime64 parses by default."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(sep=" ", timespec="milliseconds")


@dataclass(frozen=True)
class Encoded:
    """One event ready for the stream: its id, its row, and whether the client chose the id."""

    event_id: str
    row: bytes
    client_id: bool


def to_row(event: EventIn, received_at: datetime) -> Encoded:
    """Fill defaults and encode the event as the JSONEachRow line the consumers insert.

    The key order is fixed (event_id first): consumers recognise rows by that prefix.
    """
    event_id = str(event.event_id or uuid.uuid4())
    row: dict[str, Any] = {
        "event_id": event_id,
        "site_id": event.site_id,
        "event_type": event.event_type,
        "path": event.path,
        "user_id": event.user_id or "",
        "ts": _clickhouse_time(event.timestamp or received_at),
        "received_at": _clickhouse_time(received_at),
    }
    return Encoded(event_id, orjson.dumps(row), client_id=event.event_id is not None)

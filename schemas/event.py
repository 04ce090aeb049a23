"""The event as clients send it (`POST /event`, `POST /events`): its wire model, the
validation and normalisation of its fields, and the times it is stored with."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from schemas.urls import (
    MAX_TAG,
    UNSAFE,
    UNSAFE_MESSAGE,
    normalize_path,
    parse_page,
)

# ClickHouse's Date covers 1970..2149; refuse what would be clamped there silently.
MIN_TIMESTAMP = datetime(1970, 1, 2, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(minutes=5)
_RANGE_MESSAGE = "must be between 1970-01-02 and 2100"

# Identifiers that end up in keys, URLs and logs: a safe charset.
SAFE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
MAX_URL = 2048
MAX_PROPS = 30
MAX_PROP_KEY = 300
MAX_PROP_VALUE = 2000
MAX_ENGAGEMENT_MS = 2**32 - 1
MAX_REVENUE = Decimal("1e15")
# Events of this type only carry engagement data (time on page, scroll depth): they are
# stored, and never counted as page views or events.
ENGAGEMENT = "engagement"
# The event types that are page views (the seeds used both spellings).
PAGEVIEWS = ("pageview", "page_view")

Tag = Annotated[StrictStr | None, Field(min_length=1, max_length=MAX_TAG)]


def _prop_text(value: Any) -> str:
    """A property value as stored: text as is, booleans as true/false, numbers as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise PydanticCustomError("prop_type", "values must be strings, numbers or booleans")


def props_as_text(props: dict[str, Any]) -> dict[str, str]:
    """Validate custom properties (flat, bounded) and turn every value into text."""
    if len(props) > MAX_PROPS:
        raise PydanticCustomError("props_count", f"at most {MAX_PROPS} properties")
    out = {}
    for key, value in props.items():
        if not key or len(key) > MAX_PROP_KEY:
            raise PydanticCustomError("prop_key", f"keys must have 1 to {MAX_PROP_KEY} characters")
        text = _prop_text(value)
        if len(text) > MAX_PROP_VALUE:
            raise PydanticCustomError(
                "prop_value", f"values must have at most {MAX_PROP_VALUE} characters"
            )
        out[_printable(key)] = _printable(text)
    return out


@dataclass(frozen=True)
class TimeWindow:
    """The accepted range of event timestamps: raw retention back, MAX_FUTURE ahead."""

    now: datetime
    retention_days: int

    @property
    def oldest(self) -> datetime:
        if not self.retention_days:  # kept forever
            return MIN_TIMESTAMP
        return max(MIN_TIMESTAMP, self.now - timedelta(days=self.retention_days))


def _printable(value: str) -> str:
    if UNSAFE.search(value):
        raise PydanticCustomError("unsafe_chars", UNSAFE_MESSAGE)
    return value


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


def _amount(value: Any) -> Any:
    """A money amount: a number or a decimal string, kept to 3 decimal places."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PydanticCustomError("amount_type", "must be a number or a decimal string")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PydanticCustomError("amount_format", "is not a decimal number") from None
    if not amount.is_finite() or abs(amount) >= MAX_REVENUE:
        raise PydanticCustomError("amount_range", "must be a finite amount under 10^15")
    return amount.quantize(Decimal("0.001"))


class Revenue(BaseModel):
    """A purchase's value, in the currency it was paid in (Plausible's `revenue`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: StrictStr = Field(
        pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code, e.g. USD (stored upper-case)"
    )
    amount: Annotated[Decimal, BeforeValidator(_amount)] = Field(
        description="a number or a decimal string, e.g. 15.99"
    )

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


def _clamped(top: int) -> Callable[[Any], Any]:
    """A whole number, at most `top` (trackers round, and may overshoot)."""

    def check(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return min(value, top)
        raise PydanticCustomError("whole_number", "must be a whole number, 0 or more")

    return check


class EventIn(BaseModel):
    """One analytics event as accepted by `POST /event` (snake_case or camelCase keys).

    `site_id` may be left out when the API key names the site (`HITSTREAM_INGEST_AUTH=key`).
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        # One of the two names the page (the JSON Schema says so; the validator enforces it).
        json_schema_extra={"anyOf": [{"required": ["path"]}, {"required": ["url"]}]},
    )

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
        validation_alias=AliasChoices("event_type", "eventType"),
        description=(
            "pageview (or page_view) for a page view, any other name for a custom event "
            f"(spaces allowed, e.g. 'Outbound Link: Click'); '{ENGAGEMENT}' events carry "
            "engagement only and are never counted"
        ),
    )
    url: StrictStr | None = Field(
        default=None,
        max_length=MAX_URL,
        description="the page's absolute http(s) URL: path, hostname and UTM tags come from it",
    )
    path: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        validate_default=True,
        description="the page's path (or give url)",
    )
    referrer: StrictStr | None = Field(
        default=None, max_length=MAX_URL, description="the referring URL (document.referrer)"
    )
    utm_source: Tag = None
    utm_medium: Tag = None
    utm_campaign: Tag = None
    utm_term: Tag = None
    utm_content: Tag = None
    props: dict[StrictStr, Any] | None = Field(
        default=None,
        description=(
            f"custom properties: at most {MAX_PROPS} keys of up to {MAX_PROP_KEY} characters, "
            f"values strings, numbers or booleans of up to {MAX_PROP_VALUE} characters"
        ),
    )
    interactive: StrictBool = Field(
        default=True, description="false: the event is no interaction (bounce rate ignores it)"
    )
    revenue: Revenue | None = None
    engagement_ms: Annotated[int | None, BeforeValidator(_clamped(MAX_ENGAGEMENT_MS))] = Field(
        default=None, description="time engaged with the page, in ms (engagement events)"
    )
    scroll_depth: Annotated[int | None, BeforeValidator(_clamped(100))] = Field(
        default=None, description="how far the page was scrolled, in % (engagement events)"
    )
    user_id: StrictStr | None = Field(
        default=None, max_length=256, validation_alias=AliasChoices("user_id", "userId")
    )
    timestamp: Timestamp = Field(default=None, description="ISO 8601 with a UTC offset")
    event_id: EventId = Field(default=None, validation_alias=AliasChoices("event_id", "eventId"))

    @field_validator("user_id", "event_type")
    @classmethod
    def _printable_user(cls, value: str | None) -> str | None:
        return None if value is None else _printable(value)

    @field_validator("path")
    @classmethod
    def _normalized_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("url") is None:
                raise PydanticCustomError("page_missing", "give path or url")
            return None
        return normalize_path(_printable(value))

    @field_validator("url")
    @classmethod
    def _page_url(cls, value: str | None) -> str | None:
        if value is not None and parse_page(_printable(value)) is None:
            raise PydanticCustomError("url", "must be an absolute http(s) URL")
        return value

    @field_validator(
        "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"
    )
    @classmethod
    def _printable_text(cls, value: str | None) -> str | None:
        return None if value is None else _printable(value)

    @field_validator("props")
    @classmethod
    def _flat_props(cls, value: dict[str, Any] | None) -> dict[str, str] | None:
        return None if value is None else props_as_text(value)

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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch: exactly the ones `clickhouse_time` writes."""
    return (moment - _EPOCH) // _MS


def clickhouse_time(moment: datetime) -> str:
    """UTC wall time in the form ClickHouse's DateTime64 parses by default."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(sep=" ", timespec="milliseconds")

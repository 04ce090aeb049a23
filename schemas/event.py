"""The event as clients send it, its normalisation, and the row it becomes in the stream."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Sequence
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

from schemas import entry
from schemas.sources import is_self_referral, source_of_campaign, source_of_host
from schemas.urls import (
    MAX_TAG,
    UNSAFE,
    UNSAFE_MESSAGE,
    UTM_TAGS,
    normalize_path,
    normalize_referrer,
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


@dataclass(frozen=True)
class Encoded:
    """One event ready for the stream: its id, site and row, and whether the client chose
    the id (then ingest remembers it, per site, to recognise a retry)."""

    event_id: str
    site_id: str
    row: bytes
    client_id: bool
    # What ingest's script needs to tell the event's visit (ingest/stream.py): its
    # visitor (0: none, and engagement events join no visit) and time in milliseconds.
    visitor_id: int = 0
    ts_ms: int = 0

    @property
    def id_bytes(self) -> bytes:
        """The event ID as 16 bytes (the compact form ingest remembers)."""
        return uuid.UUID(self.event_id).bytes


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch: exactly the ones `clickhouse_time` writes."""
    return (moment - _EPOCH) // _MS


def clickhouse_time(moment: datetime) -> str:
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
    events: Sequence[EventIn],
    received_at: datetime,
    site_id: str | None = None,
    visitor: Callable[[str, str | None], int] | None = None,
    client: entry.ClientColumns = entry.UNKNOWN_CLIENT,
) -> list[Encoded]:
    """Fill defaults and encode each event as its stream row (schemas/entry.py).

    `site_id` (from the API key) overrides the body's. `visitor(site_id, user_id)` gives
    each event's visitor ID (ingest/visitors.py); without it, visitor 0 (none). What is
    the same for the whole request (time received, fresh IDs) is computed once.
    """
    received = clickhouse_time(received_at)
    fresh = iter(_random_uuids(sum(1 for e in events if e.event_id is None)))
    encoded = []
    for event in events:
        event_id = str(event.event_id) if event.event_id else next(fresh)
        site = site_id or event.site_id or ""
        page = parse_page(event.url) if event.url else None
        utm = dict(page.utm) if page else {}
        for tag in UTM_TAGS:  # an explicit field wins over the URL's query string
            explicit = getattr(event, tag)
            if explicit is not None:
                utm[tag] = explicit
        referrer, source = _referrer_and_source(
            event.referrer or "", page.hostname if page else "", utm.get("utm_source")
        )
        visitor_id = visitor(site, event.user_id) if visitor is not None else 0
        row = entry.encode_row(
            event_id=event_id,
            site_id=site,
            event_type=event.event_type,
            path=event.path or (page.path if page else "/"),
            user_id=event.user_id or "",
            ts=clickhouse_time(event.timestamp) if event.timestamp else received,
            received_at=received,
            hostname=page.hostname if page else "",
            referrer=referrer,
            utm=utm,
            props=event.props or {},
            visitor_id=visitor_id,
            client=client,
            source=source,
            interactive=event.interactive,
            engagement_ms=event.engagement_ms or 0,
            scroll_depth=event.scroll_depth or 0,
            revenue=(str(event.revenue.amount), event.revenue.currency) if event.revenue else None,
        )
        moment = event.timestamp or received_at
        encoded.append(
            Encoded(
                event_id,
                site,
                row,
                event.event_id is not None,
                visitor_id if event.event_type != ENGAGEMENT else 0,
                epoch_ms(moment),  # exactly the ms the row's ts holds
            )
        )
    return encoded


# Visitors come from few places to few pages: the answer is cached per combination
# (3 us per event of a browser-shaped batch without it, most of it host comparisons).
@functools.lru_cache(maxsize=65_536)
def _referrer_and_source(
    raw_referrer: str, page_host: str, utm_source: str | None
) -> tuple[str, str]:
    """The referrer as stored (host/path) and the visit's source: utm_source (a known
    source's name when it names one), else the referrer's source; a referrer on the
    page's own host is internal navigation, no referrer at all."""
    referrer = normalize_referrer(raw_referrer) if raw_referrer else ""
    referrer_host = referrer.split("/", 1)[0]
    if referrer and is_self_referral(referrer_host, page_host):
        referrer = ""
    if utm_source is not None:
        return referrer, source_of_campaign(utm_source)
    return referrer, source_of_host(referrer_host) if referrer else ""

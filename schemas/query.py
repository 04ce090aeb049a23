"""The stats query's wire shape (`POST /api/v2/query`, Plausible's Stats API v2): its
vocabulary (metrics, dimensions, filter operators, range keywords) and the request body
as pydantic models. What a body means is checked in reporting (reporting/parse.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

# Metrics counted from events; the session metrics need whole visits.
EVENT_METRICS = ("visitors", "visits", "pageviews", "events", "users")
SESSION_METRICS = ("views_per_visit", "bounce_rate", "visit_duration")
# Revenue of revenue goals, in the goal's currency (reporting/revenue.py); v2 only.
REVENUE_METRICS = ("total_revenue", "average_revenue")
# Goal conversion rates (reporting/goals.py): over the whole query, or over each group.
CONVERSION_METRICS = ("conversion_rate", "group_conversion_rate")
METRICS = (*EVENT_METRICS, *SESSION_METRICS, "percentage", *CONVERSION_METRICS, *REVENUE_METRICS)

# Event dimensions and the events column each reads.
EVENT_DIMENSIONS = {"event:page": "path", "event:name": "event_type", "event:hostname": "hostname"}
PROPS_PREFIX = "event:props:"
# The goals an event completes (the site's goals: sites/goals.py; reporting/goals.py).
GOAL_DIMENSION = "event:goal"
# Visit dimensions: the value of the visit's first event (entry page) or last (exit page).
VISIT_DIMENSIONS = {
    "visit:entry_page": "entry_page",
    "visit:exit_page": "exit_page",
    "visit:entry_page_hostname": "entry_page_hostname",  # derived (reporting/sources.py)
    "visit:exit_page_hostname": "exit_page_hostname",
    "visit:source": "source",
    "visit:referrer": "referrer",
    "visit:channel": "channel",  # derived from source, utm_* (schemas/channels.py)
    "visit:utm_source": "utm_source",
    "visit:utm_medium": "utm_medium",
    "visit:utm_campaign": "utm_campaign",
    "visit:utm_term": "utm_term",
    "visit:utm_content": "utm_content",
    "visit:device": "device",
    "visit:browser": "browser",
    "visit:browser_version": "browser_version",
    "visit:os": "os",
    "visit:os_version": "os_version",
    "visit:country": "country",
    "visit:country_name": "country_name",  # derived from country (schemas/countries.py)
    "visit:region": "region",  # ISO 3166-2 (ingest/places.py; migration 0022)
    "visit:region_name": "region_name",
    "visit:city_name": "city_name",
}
# Plausible's dimensions hitstream cannot answer truthfully, and why (a 400 in v1 and v2).
UNAVAILABLE_DIMENSIONS = {
    "visit:city": "visit:city is a GeoNames id, which hitstream's city database does not"
    " have: use visit:city_name (or visit:region, visit:region_name)",
}
TIME_BUCKETS = ("minute", "hour", "day", "week", "month")
TIME_DIMENSIONS = ("time", *(f"time:{bucket}" for bucket in TIME_BUCKETS))

OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
RANGE_KEYWORDS = (
    *("day", "24h", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all"),
    "realtime",
)

MAX_METRICS = 20
MAX_DIMENSIONS = 8
MAX_FILTERS = 100
MAX_LIMIT = 10_000


def is_event_dimension(name: str) -> bool:
    """Whether a dimension is an event's (its page, name, host, goal or a property)."""
    return name in EVENT_DIMENSIONS or name == GOAL_DIMENSION or name.startswith(PROPS_PREFIX)


def prop_key(name: str) -> str:
    """The property key of an `event:props:<key>` dimension."""
    return name.removeprefix(PROPS_PREFIX)


class Comparisons(BaseModel):
    """`include.comparisons`, Plausible's form: the period compared with, by `mode`
    (`custom` with its own `date_range`), optionally moved to start on the same day of
    the week as the range."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["previous_period", "year_over_year", "custom"]
    date_range: list[StrictStr] | None = None
    match_day_of_week: StrictBool = False


class Include(BaseModel):
    """`include`: what the answer carries besides the rows."""

    model_config = ConfigDict(extra="forbid")

    total_rows: StrictBool = False
    time_labels: StrictBool = False
    # hitstream's extension: every time bucket of the range, the empty ones as zeros
    # (Plausible's results hold only the buckets with data; meta.time_labels lists all).
    fill_empty: StrictBool = False
    compare: Literal["previous_period", "year_over_year"] | None = None  # hitstream's form
    comparisons: Comparisons | None = None  # Plausible's form
    # Plausible clients send it; hitstream has no imported data, so it is always false.
    imports: StrictBool = False


class Pagination(BaseModel):
    """`pagination`: a JSON answer has at most 10,000 rows (the default); a CSV answer
    without a limit has every row."""

    model_config = ConfigDict(extra="forbid")

    limit: StrictInt | None = Field(default=None, ge=1, le=MAX_LIMIT)
    offset: StrictInt = Field(default=0, ge=0, le=10_000_000)


class QueryBody(BaseModel):
    """The request body as sent; reporting.parse checks what it means."""

    model_config = ConfigDict(extra="forbid")

    site_id: StrictStr = Field(min_length=1, max_length=128)
    date_range: StrictStr | list[StrictStr] = Field(
        description=f"one of {', '.join(RANGE_KEYWORDS)} (Nd: the N whole days before "
        "today, any N from 1 to 5000), or [from, to] as dates "
        "(YYYY-MM-DD, both days included) or date-times with offsets"
    )
    metrics: list[StrictStr] = Field(min_length=1, max_length=MAX_METRICS)
    dimensions: list[StrictStr] = Field(default_factory=list, max_length=MAX_DIMENSIONS)
    filters: list[Any] = Field(default_factory=list, max_length=MAX_FILTERS)
    order_by: list[list[StrictStr]] | None = Field(default=None, max_length=MAX_DIMENSIONS + 20)
    include: Include = Field(default_factory=Include)
    pagination: Pagination = Field(default_factory=Pagination)
    format: Literal["json", "csv"] = "json"

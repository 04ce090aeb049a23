"""Request bodies of the site administration routes."""

from __future__ import annotations

import functools
import re
import uuid
import zoneinfo
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictStr,
    field_validator,
)
from pydantic_core import PydanticCustomError

from schemas.urls import HOST

MAX_ORIGINS = 50
MAX_DOMAINS = 50
# The namespace of the website_id a site stored before it had one reads (migration 0017
# computes the same UUIDv5 in SQL; tests/schemas/test_sites.py checks they agree).
WEBSITE_NAMESPACE = uuid.UUID("0f5e1a3c-8b7d-4e2a-9c61-3d2b7f4a5e90")
# A UUID as Umami writes one (its `website` must be this form): 8-4-4-4-12 hex digits.
UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
WEBSITE_ID_HELP = "the UUID Umami's clients name this site by (POST /api/send); random if not given"


def default_website_id(site_id: str) -> str:
    """The website_id of a site stored before sites had one (migration 0017's default)."""
    return str(uuid.uuid5(WEBSITE_NAMESPACE, site_id))


def website_id_text(value: str) -> str:
    """A website_id as stored: a hyphenated UUID in lower case."""
    if not UUID_TEXT.match(value):
        raise PydanticCustomError(
            "uuid", "must be a UUID like 4f8c1e2a-0b6d-4c3e-9a7f-2d5b8e1c0a94"
        )
    return value.lower()


def _origin(value: str) -> str:
    """`scheme://host[:port]`, nothing more: what browsers send in the Origin header."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise PydanticCustomError("origin", "must be an origin like https://example.com")
    if parts.query or parts.fragment or parts.username:
        raise PydanticCustomError("origin", "must be an origin like https://example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _domains(values: list[str]) -> list[str]:
    """Host names (what Plausible's `domain` holds): lower case, no scheme, port or path."""
    out = set()
    for value in values:
        domain = value.strip().lower().rstrip(".")
        if not domain or len(domain) > 253 or ":" in domain or not HOST.match(domain):
            raise PydanticCustomError("domain", "must be a host name like example.com")
        out.add(domain)
    return sorted(out)


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: str) -> str:
    """An IANA zone name (Europe/Berlin, Asia/Kolkata, UTC), as the tz database spells it."""
    if value != "UTC" and value not in _zones():
        raise PydanticCustomError("timezone", "must be an IANA time zone like Europe/Berlin")
    return value


TIMEZONE_HELP = "IANA time zone of the site's stats days (default UTC)"
MAX_PUBLIC_RATE = 1_000_000.0
PUBLIC_RATE_HELP = (
    "requests a second this public site takes without a key, from all its visitors "
    "(a burst of two seconds' worth); 0: the deployment's HITSTREAM_RATE_LIMIT_KEY_PER_S"
)
SERVER_EVENTS_HELP = (
    "a public site only: also take keyless events sent with no Origin header (server-side "
    "senders, as Plausible and Umami take them), rate-limited like a browser's"
)


class SiteCreate(BaseModel):
    """`POST /api/sites`."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1, max_length=200)
    public: StrictBool = False
    allowed_origins: list[StrictStr] = Field(default_factory=list, max_length=MAX_ORIGINS)
    domains: list[StrictStr] = Field(
        default_factory=list,
        max_length=MAX_DOMAINS,
        description="host names events in Plausible's shape may name this site by",
    )
    timezone: StrictStr = Field(default="UTC", max_length=64, description=TIMEZONE_HELP)
    public_rate_limit_per_s: StrictFloat = Field(
        default=0, ge=0, le=MAX_PUBLIC_RATE, allow_inf_nan=False, description=PUBLIC_RATE_HELP
    )
    accept_server_events: StrictBool = Field(default=False, description=SERVER_EVENTS_HELP)
    website_id: StrictStr | None = Field(default=None, max_length=36, description=WEBSITE_ID_HELP)

    @field_validator("website_id")
    @classmethod
    def _website(cls, value: str | None) -> str | None:
        return None if value is None else website_id_text(value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        return sorted({_origin(v) for v in values})

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, values: list[str]) -> list[str]:
        return _domains(values)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _timezone(value)


class SiteUpdate(BaseModel):
    """`PATCH /api/sites/{site_id}`: what is given changes."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    public: StrictBool | None = None
    allowed_origins: list[StrictStr] | None = Field(default=None, max_length=MAX_ORIGINS)
    domains: list[StrictStr] | None = Field(default=None, max_length=MAX_DOMAINS)
    timezone: StrictStr | None = Field(default=None, max_length=64, description=TIMEZONE_HELP)
    public_rate_limit_per_s: StrictFloat | None = Field(
        default=None, ge=0, le=MAX_PUBLIC_RATE, allow_inf_nan=False, description=PUBLIC_RATE_HELP
    )
    accept_server_events: StrictBool | None = Field(default=None, description=SERVER_EVENTS_HELP)
    website_id: StrictStr | None = Field(default=None, max_length=36, description=WEBSITE_ID_HELP)

    @field_validator("website_id")
    @classmethod
    def _website(cls, value: str | None) -> str | None:
        return None if value is None else website_id_text(value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else sorted({_origin(v) for v in values})

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _domains(values)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _timezone(value)


class GoalCreate(BaseModel):
    """`PUT /api/sites/{site_id}/goals`: an event goal (`event_name`) or a page goal
    (`page_path`, `*` any characters); the rest of the rules are sites/goals.py's."""

    model_config = ConfigDict(extra="forbid")

    event_name: StrictStr | None = Field(default=None, max_length=10_000)
    page_path: StrictStr | None = Field(default=None, max_length=10_000)
    display_name: StrictStr | None = Field(default=None, max_length=10_000)
    currency: StrictStr | None = Field(
        default=None, max_length=10, description="ISO 4217: a revenue goal (event goals only)"
    )


class V1SiteCreate(BaseModel):
    """`POST /api/v1/sites` (JSON or a form); Plausible's other keys are accepted and
    ignored."""

    domain: str
    timezone: str = Field(default="Etc/UTC", description=TIMEZONE_HELP)


class V1GoalCreate(BaseModel):
    """`PUT /api/v1/sites/goals` (JSON or a form)."""

    site_id: str = Field(description="the site's id or one of its domains")
    goal_type: str = Field(description="event or page")
    event_name: str | None = None
    page_path: str | None = None
    display_name: str | None = None
    currency: str | None = None

"""Plausible's Events API shape, read as hitstream events.

Plausible's clients send `{"name", "url", "domain", "referrer"?, "props"?, "revenue"?,
"interactive"?}`; its tracker (npm `@plausible-analytics/tracker`, script v36) sends the
same with one-letter keys (`n`, `u`, `d`, `r`, `p`, `$`, `i`) plus `h` (hash-based
routing: the fragment is part of the page), `v` (its version) and, on its `engagement`
events, `e` (engaged time, ms) and `sd` (scroll depth, %).

Which shape a body is follows one rule: it is hitstream's when it has `event_type`,
`eventType`, `site_id` or `siteId` (whatever else it carries: hitstream ignores
unknown fields, and bodies that worked before keep working), else Plausible's when it
has `name`, `n`, `domain` or `d`, else hitstream's (whose validation then names what is
missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from schemas.event import SAFE_ID, Revenue
from schemas.urls import UNSAFE, parse_page

# Plausible's key (long or the tracker's short form) -> hitstream's field.
FIELDS: Mapping[str, str] = {
    "name": "event_type",
    "n": "event_type",
    "domain": "site_id",
    "d": "site_id",
    "url": "url",
    "u": "url",
    "referrer": "referrer",
    "r": "referrer",
    "props": "props",
    "p": "props",
    "revenue": "revenue",
    "$": "revenue",
    "interactive": "interactive",
    "i": "interactive",
    "e": "engagement_ms",
    "sd": "scroll_depth",
}
PLAUSIBLE_MARKS = frozenset({"name", "n", "domain", "d"})
HITSTREAM_MARKS = frozenset({"event_type", "eventType", "site_id", "siteId"})
MAX_FRAGMENT = 1024
OK = "ok"  # Plausible's answer body to an accepted (or dropped) event


class PlausibleEvent(BaseModel):
    """An event in Plausible's Events API shape (for the API's documentation; ingest
    reads it through FIELDS into EventIn, which validates it). The tracker's one-letter
    keys are accepted too: n, u, d, r, p, $, i, h (hash routing), e and sd (engagement
    time in ms and scroll depth in %, on `engagement` events), v (ignored)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(
        min_length=1, max_length=128, description="pageview, engagement, or a custom event"
    )
    url: str = Field(
        max_length=2048,
        pattern=r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?(/[^\s#]*)?(#\S*)?$",
        description="the page's absolute http(s) URL",
    )
    domain: str = Field(
        min_length=1,
        max_length=128,
        pattern=SAFE_ID,
        description="the site: one of a site's domains, or its id (open mode: the site id)",
    )
    referrer: str | None = None
    props: dict[str, str | int | float | bool | None] | None = None
    revenue: Revenue | None = None
    interactive: bool = True


def is_plausible(body: Any) -> bool:
    """True when `body` is an event in Plausible's shape (the rule above)."""
    return (
        isinstance(body, dict)
        and HITSTREAM_MARKS.isdisjoint(body)
        and not PLAUSIBLE_MARKS.isdisjoint(body)
    )


def as_event_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The hitstream fields of a Plausible event (validated by EventIn afterwards).

    Props whose value is null or empty are left out, as Plausible does. Unknown keys
    are ignored, as EventIn ignores them.
    """
    out: dict[str, Any] = {}
    for key, value in body.items():
        field = FIELDS.get(key)
        if field is None or (field == "referrer" and value is None):
            continue
        if field == "props" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None and v != ""}
        out[field] = value
    return out


def as_sent(details: list[dict[str, Any]], body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Validation details naming each field as this body sent it (`n`, not event_type)."""
    sent = {FIELDS[key]: key for key in body if key in FIELDS}
    for detail in details:
        head, dot, rest = detail["field"].partition(".")
        detail["field"] = sent.get(head, head) + dot + rest
    return details


def errors_map(details: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Plausible's error body: `{"errors": {field: [message, ...]}}`."""
    errors: dict[str, list[str]] = {}
    for detail in details:
        errors.setdefault(detail["field"], []).append(detail["message"])
    return errors


def hash_route(body: Mapping[str, Any]) -> str | None:
    """The page's path with its fragment when the tracker says it routes by hash
    (`h: 1`), as Plausible counts `/app#/settings` apart from `/app#/billing`; None
    when the path is the URL's own."""
    url = body.get("u", body.get("url"))
    if not body.get("h") or not isinstance(url, str):
        return None
    page = parse_page(url)
    fragment = UNSAFE.sub("", urlsplit(url).fragment)[:MAX_FRAGMENT]
    if page is None or not fragment:
        return None
    return f"{page.path}#{fragment}"

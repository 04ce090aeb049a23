"""Plausible's Events API shape, as hitstream accepts it (ingest/plausible.py reads it).

Plausible's clients send `{"name", "url", "domain", "referrer"?, "props"?, "revenue"?,
"interactive"?}`; its tracker (npm `@plausible-analytics/tracker`, script v36) sends the
same with one-letter keys (`n`, `u`, `d`, `r`, `p`, `$`, `i`) plus `h` (hash-based
routing: the fragment is part of the page), `v` (its version) and, on its `engagement`
events, `e` (engaged time, ms) and `sd` (scroll depth, %). The legacy npm tracker
(`plausible-tracker` 0.3.9) sends `p` as a JSON string, `h` as 1 or 0, and `w` (the
window's width, ignored, as Plausible ignores it); `m` and `meta` are older names of
the props.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from schemas.event import SAFE_ID, Revenue

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
    "revenue": "revenue",
    "$": "revenue",
    "interactive": "interactive",
    "i": "interactive",
    "e": "engagement_ms",
    "sd": "scroll_depth",
}
# Plausible's names of the props, in the order it reads them: the first one given (not
# null or false) is the event's props (PA lib/plausible/ingestion/request.ex). An object,
# or a JSON string of one (the legacy tracker's `p`).
PROPS_KEYS = ("m", "meta", "p", "props")
# Plausible's names of the hash-routing flag: 1 when the fragment is part of the page.
HASH_MODE_KEYS = ("h", "hashMode")
OK = "ok"  # Plausible's answer body to an accepted (or dropped) event


class PlausibleEvent(BaseModel):
    """An event in Plausible's Events API shape (for the API's documentation; ingest
    reads it through FIELDS into EventIn, which validates it). The tracker's one-letter
    keys are accepted too: n, u, d, r, p, $, i, h (hash routing), e and sd (engagement
    time in ms and scroll depth in %, on `engagement` events), v and w (ignored). The
    props may come as `m`, `meta`, `p` or `props` (the first one given wins), as an
    object or a JSON string of one."""

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
    props: dict[str, str | int | float | bool | None] | str | None = Field(
        default=None,
        description=(
            "custom properties: an object, or a JSON string of one (as the legacy tracker "
            "sends `p`); also read from `m` or `meta`, Plausible's older names"
        ),
    )
    revenue: Revenue | None = None
    interactive: bool = True

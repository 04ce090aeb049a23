"""Plausible's Events API shape, as hitstream accepts it (ingest/plausible.py reads it).

Plausible's clients send `{"name", "url", "domain", "referrer"?, "props"?, "revenue"?,
"interactive"?}`; its tracker (npm `@plausible-analytics/tracker`, script v36) sends the
same with one-letter keys (`n`, `u`, `d`, `r`, `p`, `$`, `i`) plus `h` (hash-based
routing: the fragment is part of the page), `v` (its version) and, on its `engagement`
events, `e` (engaged time, ms) and `sd` (scroll depth, %).
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
    "props": "props",
    "p": "props",
    "revenue": "revenue",
    "$": "revenue",
    "interactive": "interactive",
    "i": "interactive",
    "e": "engagement_ms",
    "sd": "scroll_depth",
}
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

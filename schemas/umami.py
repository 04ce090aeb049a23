"""Umami's collection API shape (`POST /api/send`), as hitstream accepts it
(ingest/umami.py reads it into events).

Umami's trackers (npm `umami@2.10.0`'s `src/tracker/index.js`, and v3's) and its Node
client (`@umami/node@0.4.0`) send `{"type": "event" | "identify", "payload": {...}}`;
the limits below are Umami's (umami-software/umami `src/app/api/send/route.ts`).
Unknown keys are ignored, as Umami's schema strips them: among them the `ip`,
`userAgent`, `browser`, `os` and `device` overrides Umami honours, which an
unauthenticated body must not use to pass as another visitor.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from schemas.event import MAX_URL
from schemas.sites import UUID_TEXT

MAX_EVENT_NAME = 50  # Umami's limit on `name`; longer is a 400, as in Umami
BAD_REQUEST = "Bad request"
WEBSITE_NOT_FOUND = "Website not found."
# What Umami answers a bot's request (200, nothing recorded).
BOT_ANSWER = {"beep": "boop"}


class UmamiPayload(BaseModel):
    """What one Umami request says: the website (a site's `website_id`), the page and,
    for a custom event, its name and data."""

    model_config = ConfigDict(extra="ignore")

    website: StrictStr = Field(
        pattern=UUID_TEXT.pattern, description="the site's website_id (a UUID)"
    )
    hostname: StrictStr | None = Field(default=None, max_length=100)
    url: StrictStr | None = Field(
        default=None,
        max_length=MAX_URL,
        description="the page: a path (`/pricing?x=1`, Umami v2's tracker) or a full URL (v3)",
    )
    referrer: StrictStr | None = Field(default=None, max_length=MAX_URL)
    title: StrictStr | None = Field(
        default=None, max_length=MAX_URL, description="URL-encoded by Umami v2 (not stored)"
    )
    screen: StrictStr | None = Field(default=None, max_length=11, description="not stored")
    language: StrictStr | None = Field(default=None, max_length=35, description="not stored")
    name: StrictStr | None = Field(
        default=None,
        max_length=MAX_EVENT_NAME,
        description="a custom event's name (none: a page view)",
    )
    tag: StrictStr | None = Field(default=None, max_length=50, description="not stored")
    data: dict[StrictStr, Any] | None = Field(
        default=None,
        description=(
            "the event's properties (as hitstream's props; nested objects and arrays "
            "stored as JSON text, nulls left out); on `identify`, not stored"
        ),
    )
    id: StrictStr | None = Field(default=None, max_length=256, description="ignored")
    timestamp: StrictInt | None = Field(default=None, description="ignored")


class UmamiSend(BaseModel):
    """`POST /api/send`: an `event` (page view or custom event), or an `identify`
    (answered and not stored: nothing that identifies a visitor is kept)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["event", "identify"]
    payload: UmamiPayload


class UmamiAccepted(BaseModel):
    """Umami's answer to an accepted request: `cache` is opaque (the trackers send it
    back in `x-umami-cache`, which hitstream ignores); the ids are derived from the
    visitor's salted daily hash (and the UTC hour, for the visit)."""

    cache: str
    sessionId: str  # Umami's spelling
    visitId: str


class UmamiErrorBody(BaseModel):
    """Umami's error: a message, a code, the status, and (for a bad payload) zod's tree
    of the messages of each field."""

    model_config = ConfigDict(extra="allow")

    message: str
    code: str
    status: int


class UmamiError(BaseModel):
    """A `400` of `POST /api/send`, in Umami's shape."""

    error: UmamiErrorBody


def bad_request(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Umami's 400 body for an invalid request: its error, and a tree of the messages
    of each field (as zod's treeifyError lays them out)."""
    tree: dict[str, Any] = {"errors": []}
    for error in errors:
        node = tree
        for part in error["loc"]:
            node = node.setdefault("properties", {}).setdefault(str(part), {"errors": []})
        node["errors"].append(error["msg"])
    return {"error": {"message": BAD_REQUEST, "code": "bad-request", "status": 400, **tree}}


def not_found() -> dict[str, Any]:
    """Umami's 400 body for a website nobody has."""
    return {"error": {"message": WEBSITE_NOT_FOUND, "code": "bad-request", "status": 400}}

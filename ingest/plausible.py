"""Plausible's Events API shape (schemas/plausible.py) read as hitstream events, and
answered as Plausible answers.

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

from starlette.responses import Response

from schemas.plausible import FIELDS, OK
from schemas.urls import UNSAFE, parse_page

PLAUSIBLE_MARKS = frozenset({"name", "n", "domain", "d"})
HITSTREAM_MARKS = frozenset({"event_type", "eventType", "site_id", "siteId"})
MAX_FRAGMENT = 1024


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


def answer(dropped: bool, headers: dict[str, str]) -> Response:
    """What Plausible's API answers: 202 `ok`, with `x-plausible-dropped` when the event
    was not recorded."""
    if dropped:
        headers = {**headers, "x-plausible-dropped": "1"}
    return Response(OK, status_code=202, media_type="text/plain", headers=headers)

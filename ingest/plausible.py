"""Plausible's Events API shape (schemas/plausible.py) read as hitstream events, and
answered as Plausible answers.

Which shape a body is follows one rule: it is hitstream's when it has `event_type`,
`eventType`, `site_id` or `siteId` (whatever else it carries: hitstream ignores
unknown fields, and bodies that worked before keep working), else Plausible's when it
has `name`, `n`, `domain` or `d`, else hitstream's (whose validation then names what is
missing).

The props are the first of `m`, `meta`, `p`, `props` given (Plausible's order), an object
or a JSON string of one; a string that is not JSON of an object is refused with a 400
naming its field (Plausible reads it as no props: hitstream does not lose them silently).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from starlette.responses import Response

from schemas.plausible import FIELDS, HASH_MODE_KEYS, OK, PROPS_KEYS
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
    are ignored, as EventIn ignores them. Raises ValidationError for props sent as a
    string that is not JSON of an object.
    """
    out: dict[str, Any] = {}
    for key, value in body.items():
        field = FIELDS.get(key)
        if field is None or (field == "referrer" and value is None):
            continue
        out[field] = value
    given = props_key(body)
    if given is not None:
        props = _decoded(body[given])
        if isinstance(props, dict):
            props = {k: v for k, v in props.items() if v is not None and v != ""}
        out["props"] = props
    return out


def props_key(body: Mapping[str, Any]) -> str | None:
    """Which of Plausible's props keys holds this body's props: the first given that is
    not null or false, as Plausible reads `m || meta || p || props`."""
    return next((k for k in PROPS_KEYS if body.get(k) is not None and body[k] is not False), None)


def _decoded(props: Any) -> Any:
    """Props sent as a JSON string (the legacy tracker's `p`) as the object it holds;
    anything else as sent (EventIn validates it)."""
    if not isinstance(props, str):
        return props
    try:
        decoded = orjson.loads(props)
    except orjson.JSONDecodeError:
        decoded = None
    if not isinstance(decoded, dict):
        error = PydanticCustomError("props_json", "must be an object, or a JSON string of one")
        details = InitErrorDetails(type=error, loc=("props",), input=props)
        raise ValidationError.from_exception_data("PlausibleEvent", [details])
    return decoded


def as_sent(details: list[dict[str, Any]], body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Validation details naming each field as this body sent it (`n`, not event_type)."""
    sent = {FIELDS[key]: key for key in body if key in FIELDS}
    if (key := props_key(body)) is not None:
        sent["props"] = key
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
    """The page's path with its fragment when the tracker says it routes by hash (`h: 1`
    or `hashMode`; the legacy tracker sends `h: 0` otherwise), as Plausible counts
    `/app#/settings` apart from `/app#/billing`; None when the path is the URL's own."""
    url = body.get("u", body.get("url"))
    if not any(body.get(k) for k in HASH_MODE_KEYS) or not isinstance(url, str):
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

"""POST /api/send: Umami's collection API (schemas/umami.py) read as hitstream events,
admitted, stored and answered as Umami answers (umami-software/umami
`src/app/api/send/route.ts`).

The request is admitted as `/api/event`'s are (ingest/admission.py): in key mode,
Umami's clients send no API key, so only a browser on an origin a public site allows
gets in; a server-side sender such as `@umami/node`, which sends no Origin, gets in
once the public site accepts server events (`accept_server_events`), else a 401.
`website` names the site by its `website_id` (one Redis hash read, sites/cache.py).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from foundation.http import BEACON_TYPES, APIError, JSONResponse, header, read_json
from ingest.admission import Admission, admit
from ingest.bots import is_bot
from ingest.cors import cors_headers, preflight_allowing
from ingest.routes import IngestRequest, store, with_cors
from ingest.visitors import RequestVisitor
from schemas.event import EventIn
from schemas.umami import BOT_ANSWER, UmamiPayload, UmamiSend, bad_request, not_found
from schemas.urls import parse_page

PATH = "/api/send"
CACHE_HEADER = "x-umami-cache"
PAGEVIEW = "pageview"
HOUR_S = 3600
# The page of a custom event sent without a URL (`@umami/node`'s `track(name, data)`):
# hitstream's path is never empty, so it is the root (Umami stores '').
NO_PAGE = "/"


def event_fields(payload: UmamiPayload, site_id: str) -> dict[str, Any]:
    """The hitstream fields of an Umami event (validated by EventIn afterwards): its
    page from `url` (a path, with `hostname`, or a full URL; its fragment dropped, as
    hitstream counts pages by path), `name` as the event type (none: a page view),
    `data` as props."""
    fields: dict[str, Any] = {
        "site_id": site_id,
        "event_type": payload.name or PAGEVIEW,
        "referrer": payload.referrer or None,
        "props": props_of(payload.data) if payload.data else None,
    }
    fields.update(page_fields(payload.url or "", payload.hostname or ""))
    return fields


def page_fields(url: str, hostname: str) -> dict[str, Any]:
    """`url` or `path` for EventIn: a full URL as sent; a path on `hostname` as the full
    URL it names; a path without a hostname as a path and its UTM tags (no hostname
    stored); no url: the root."""
    if not url:
        return {"path": NO_PAGE}
    if parse_page(url) is not None:
        return {"url": url}
    path = url if url.startswith("/") else "/" + url
    if hostname:
        return {"url": f"https://{hostname}{path}"}
    page = parse_page("http://localhost" + path)
    return {"path": page.path, **page.utm} if page else {"path": path}


def props_of(data: dict[str, Any]) -> dict[str, Any]:
    """Umami's event data as props: nulls left out, nested objects and arrays as JSON
    text; EventIn then holds them to the props' limits."""
    return {
        key: orjson.dumps(value).decode() if isinstance(value, dict | list) else value
        for key, value in data.items()
        if value is not None
    }


def answer_ids(visitor_id: int, website: str, now_s: float) -> dict[str, str]:
    """The answer's `sessionId` (a UUID of the visitor's salted daily hash), `visitId`
    (of it and the UTC hour, as Umami's visits turn with the hour) and `cache` (an
    opaque token the trackers send back; hitstream ignores it)."""
    hour = int(now_s // HOUR_S)
    session = _uuid_of(b"session", visitor_id.to_bytes(8, "big"))
    visit = _uuid_of(b"visit", session.bytes, hour.to_bytes(8, "big"))
    token = orjson.dumps(
        {"websiteId": website, "sessionId": str(session), "visitId": str(visit), "iat": int(now_s)}
    )
    cache = base64.urlsafe_b64encode(token).rstrip(b"=").decode()
    return {"cache": cache, "sessionId": str(session), "visitId": str(visit)}


def _uuid_of(*parts: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.blake2b(b"\0".join(parts), digest_size=16).digest(), version=4)


async def post_send(request: IngestRequest) -> Response:
    """Accept one Umami request: an event stored (200 with ids and a cache token), an
    identify answered and dropped, a bot's request answered `beep boop` and dropped."""
    admission = await admit(request)
    headers = cors_headers(admission.cors_origin)
    sent = await _read(request, admission)
    if isinstance(sent, Response):
        return sent
    payload = sent.payload
    site_id = await admission.cache.site_for_website(payload.website)
    if site_id is None:
        return _refused(request, not_found(), headers)
    if sent.type == "identify":  # admitted as an event of the site, then dropped
        grant = await admission.grant([_identify(site_id)], [False], batch=False)
        if is_bot(header(request, "user-agent") or ""):
            return JSONResponse(BOT_ANSWER, headers=grant.headers)
        return await _answer(request, admission, site_id, payload.website, grant.headers)
    try:
        event = EventIn.model_validate(event_fields(payload, site_id))
    except ValidationError as exc:
        return _refused(request, bad_request(_as_sent(exc)), headers)
    except orjson.JSONEncodeError as exc:  # nested data JSON cannot hold (a 65-bit integer)
        errors = [{"loc": ("payload", "data"), "msg": f"cannot be stored as JSON text: {exc}"}]
        return _refused(request, bad_request(errors), headers)
    grant = await admission.grant([event], [False], batch=False)
    if await store(request, grant) is None:
        return JSONResponse(BOT_ANSWER, headers=grant.headers)
    return await _answer(request, admission, site_id, payload.website, grant.headers)


def _identify(site_id: str) -> EventIn:
    """What an `identify` is admitted as (the site's rules and buckets, as an event's);
    never stored."""
    return EventIn(site_id=site_id, event_type="identify", path=NO_PAGE)


async def _read(request: IngestRequest, admission: Admission) -> UmamiSend | Response:
    """The request's body, or Umami's 400 when it is not JSON or not its shape (a body
    over the size limit is refused with 413, as on /api/event)."""
    headers = cors_headers(admission.cors_origin)
    try:
        body = await read_json(request, request.state["settings"].max_body_bytes, BEACON_TYPES)
    except APIError as exc:
        if exc.status_code not in (400, 415):
            raise
        return _refused(request, bad_request([]), headers)
    try:
        return UmamiSend.model_validate(body)
    except ValidationError as exc:
        return _refused(request, bad_request(_errors(exc)), headers)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": error["loc"], "msg": error["msg"]} for error in exc.errors()]


def _as_sent(exc: ValidationError) -> list[dict[str, Any]]:
    """EventIn's errors named as the Umami fields they came from."""
    sent = {"event_type": "name", "props": "data", "path": "url"}
    named = []
    for error in _errors(exc):
        head, *rest = error["loc"] or ("",)
        loc = ("payload", sent.get(str(head), str(head)), *rest)
        named.append({"loc": loc, "msg": error["msg"]})
    return named


def _refused(request: IngestRequest, body: dict[str, Any], headers: dict[str, str]) -> Response:
    request.state["metrics"].ingest_refused.labels("400").inc()
    return JSONResponse(body, status_code=400, headers=headers)


async def _answer(
    request: IngestRequest,
    admission: Admission,
    site_id: str,
    website: str,
    headers: dict[str, str],
) -> Response:
    """200 with Umami's ids and cache token."""
    user_agent = header(request, "user-agent") or ""
    visitor = RequestVisitor(await request.state["salts"].today(), admission.ip, user_agent)
    visitor_id, _ = visitor(site_id, None)
    return JSONResponse(answer_ids(visitor_id, website, time.time()), headers=headers)


def routes() -> list[BaseRoute]:
    """POST /api/send and its preflight (Umami's trackers send `x-umami-cache`)."""
    return [
        Route(PATH, with_cors(post_send), methods=["POST"]),
        Route(PATH, preflight_allowing("content-type", CACHE_HEADER), methods=["OPTIONS"]),
    ]

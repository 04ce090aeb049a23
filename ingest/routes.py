"""POST /event and POST /events: validate, normalise, append to the stream, answer 202."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from datetime import UTC, datetime
from typing import Any, TypeAlias

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from foundation.errors import REDIS_ERRORS, EngineUnavailable, StreamUnavailable
from foundation.http import (
    BEACON_TYPES,
    APIError,
    Endpoint,
    JSONResponse,
    api_routes,
    client_ip,
    engine_unavailable,
    read_json,
    retry_later,
    unavailable,
    validation_details,
)
from foundation.metrics import Metrics
from ingest import plausible
from ingest.agents import describe
from ingest.auth import (
    AdmissionState,
    Caller,
    admit,
    authorize,
    cors_headers,
    error_cors_headers,
    preflight,
)
from ingest.bots import is_bot
from ingest.encode import Encoded, encode
from ingest.geo import country
from ingest.stream import PartlyStored, StreamWriter
from ingest.visitors import RequestVisitor
from schemas.event import EventBatch, EventIn, TimeWindow

log = logging.getLogger(__name__)


class IngestState(AdmissionState):
    """What the ingest routes read from the app's lifespan state."""

    writer: StreamWriter
    metrics: Metrics


IngestRequest: TypeAlias = Request[IngestState]


async def _append(request: IngestRequest, events: list[Encoded]) -> None:
    """Append to the stream, or answer 503 + Retry-After when it cannot take them now."""
    writer = request.state["writer"]
    refusal = writer.refusal(events)
    if refusal is not None:
        raise unavailable("ingest is over its backlog limit, retry later", "stream", refusal)
    try:
        await writer.append(events)
    except PartlyStored as exc:
        log.warning("append refused by a shard of the stream: %s", exc)
        raise partly_stored(events, exc.stored) from exc
    except StreamUnavailable as exc:
        log.warning("append refused by Redis: %s", exc)
        raise unavailable("event stream unavailable, retry later", "stream") from exc


def partly_stored(events: list[Encoded], stored: list[int]) -> APIError:
    """The 503 of a batch whose sites' shards took their part but not all: which events
    are stored. A retry of the whole request counts each event with an event_id once
    (ingest recognises it); one without is stored again, so resend only the others."""
    message = (
        f"{len(stored)} of {len(events)} events were stored (`stored` lists their indexes "
        "and event_ids); send the others again, or the whole batch if every event has an "
        "event_id"
    )
    extra = {
        "accepted": len(stored),
        "stored": stored,
        "event_ids": [events[i].event_id for i in stored],
    }
    return APIError(
        503,
        "event stream partly unavailable, retry later",
        [{"field": "stream", "message": message}],
        headers=retry_later(),
        extra=extra,
    )


def _window(request: IngestRequest) -> dict[str, TimeWindow]:
    """Validation context: timestamps must fall in the raw retention, not in the future."""
    return {"window": TimeWindow(datetime.now(UTC), request.state["settings"].raw_ttl_days)}


async def _body(request: IngestRequest) -> tuple[Caller, Any]:
    """Admit the caller (key, or allowed origin; IP charged), then read the body."""
    caller = await admit(request)
    max_bytes = request.state["settings"].max_body_bytes
    return caller, await read_json(request, max_bytes, BEACON_TYPES)


def _require_site(events: list[EventIn], batch: bool) -> None:
    """Without an API key naming the site, each event must name it."""
    missing = [i for i, event in enumerate(events) if event.site_id is None]
    if not missing:
        return
    detail: dict[str, Any] = {"field": "site_id", "message": "Field required"}
    if batch:
        detail["index"] = missing[0]
        raise APIError(
            400, f"invalid batch: event {missing[0]} is invalid; nothing was accepted", [detail]
        )
    raise APIError(400, "invalid event", [detail])


def _read_event(
    body: Any, window: dict[str, TimeWindow], index: int | None = None
) -> tuple[EventIn, bool]:
    """One event of either shape, and whether it was Plausible's (ingest/plausible.py).
    A refusal names the fields as the body sent them; Plausible's shape always names
    its site (`domain`)."""
    shaped = plausible.is_plausible(body)
    try:
        event = EventIn.model_validate(
            plausible.as_event_fields(body) if shaped else body, context=window
        )
    except ValidationError as exc:
        details = validation_details(exc)
        raise _invalid(
            plausible.as_sent(details, body) if shaped else details, shaped, index
        ) from None
    if shaped and event.site_id is None:
        field = "d" if "n" in body else "domain"
        raise _invalid([{"field": field, "message": "Field required"}], shaped, index)
    if shaped and (path := plausible.hash_route(body)) is not None:
        event = event.model_copy(update={"path": path})
    return event, shaped


def _invalid(details: list[dict[str, Any]], shaped: bool, index: int | None) -> APIError:
    """The 400 of an invalid event (in Plausible's shape: with its `errors` too), or of
    a batch holding one at `index`."""
    if index is not None:
        for detail in details:
            detail["index"] = index
        return APIError(
            400, f"invalid batch: event {index} is invalid; nothing was accepted", details
        )
    extra = {"errors": plausible.errors_map(details)} if shaped else {}
    return APIError(400, "invalid event", details, extra=extra)


async def _sites_of_domains(
    request: IngestRequest, events: list[EventIn], shaped: list[bool]
) -> list[EventIn]:
    """Plausible's `domain` names a site by one of its domains (the site that lists it),
    else by its id."""
    cache = request.state["site_cache"]
    named = {e.site_id for e, is_plausible in zip(events, shaped, strict=True) if is_plausible}
    sites = {domain: await cache.site_for_domain(domain) for domain in named if domain}
    resolved = []
    for event, is_plausible in zip(events, shaped, strict=True):
        site_id = sites.get(event.site_id or "") if is_plausible else None
        resolved.append(event.model_copy(update={"site_id": site_id}) if site_id else event)
    return resolved


async def _accept(
    request: IngestRequest,
    caller: Caller,
    events: list[EventIn],
    batch: bool,
    shaped: list[bool],
) -> tuple[list[Encoded] | None, dict[str, str]]:
    """Authorise, fix each event's site, store them; return them (None: dropped as a
    bot's) and the CORS headers."""
    if any(shaped):
        events = await _sites_of_domains(request, events, shaped)
    caller = await authorize(request, caller, events)
    if caller.site_id is None:
        _require_site(events, batch)
    ip, user_agent = client_ip(request), request.headers.get("user-agent", "")
    if _from_a_bot(events, user_agent):
        request.state["metrics"].bot_events_dropped.inc(len(events))
        return None, cors_headers(caller.cors_origin)
    salt = await request.state["salts"].today()
    visitor = RequestVisitor(salt, ip, user_agent)
    client = dataclasses.replace(describe(user_agent), country=country(ip))
    encoded = encode(
        events, datetime.now(UTC), site_id=caller.site_id, visitor=visitor, client=client
    )
    await _append(request, encoded)
    request.state["metrics"].events_accepted.inc(len(encoded))
    return encoded, cors_headers(caller.cors_origin)


def _from_a_bot(events: list[EventIn], user_agent: str) -> bool:
    """A crawler's or headless browser's page views. Judged only on events that carry a
    browser's context (a page URL or a referrer): a server sending path-only events
    (the seeds' curl examples) speaks for its visitors, not as one."""
    return any(e.url or e.referrer for e in events) and is_bot(user_agent)


# The answer to a bot's events: 202, as for any accepted event, saying they were dropped.
DROPPED = {"status": "dropped", "reason": "bot"}


async def post_event(request: IngestRequest) -> Response:
    """Accept one event (hitstream's shape or Plausible's); 202 once it is in the stream."""
    caller, body = await _body(request)
    event, shaped = _read_event(body, _window(request))
    stored, headers = await _accept(request, caller, [event], batch=False, shaped=[shaped])
    if shaped:
        return plausible.answer(stored is None, headers)
    if stored is None:
        return JSONResponse({**DROPPED, "event_id": None}, status_code=202, headers=headers)
    return JSONResponse(
        {"status": "accepted", "event_id": stored[0].event_id}, status_code=202, headers=headers
    )


async def post_events(request: IngestRequest) -> Response:
    """Accept a JSON array of events, all or nothing; 202 once all are in the stream."""
    caller, body = await _body(request)
    settings = request.state["settings"]
    limit = settings.max_batch_events
    if caller.public:
        # A browser's tracker sends an event or a few at a time; without a key, a batch
        # of hundreds is a flood riding on one request's charge.
        limit = min(limit, settings.max_public_batch_events)
    if isinstance(body, list) and not body:
        raise APIError(400, "empty batch", [{"field": "body", "message": "at least one event"}])
    if isinstance(body, list) and len(body) > limit:
        without_key = " without an API key" if caller.public else ""
        raise APIError(
            400,
            f"batch too large: {len(body)} events, at most {limit}{without_key}",
            [{"field": "body", "message": f"at most {limit} events per request{without_key}"}],
        )
    if not isinstance(body, list):
        raise APIError(
            400,
            "invalid batch; nothing was accepted",
            [{"field": "body", "message": "must be a JSON array of events"}],
        )
    window = _window(request)
    shaped = [plausible.is_plausible(item) for item in body]
    events: list[EventIn] | None = None
    if not any(shaped):  # hitstream's shape only: one validation call (0.6 us/event less)
        with contextlib.suppress(ValidationError):  # the loop below names what is wrong
            events = EventBatch.validate_python(body, context=window)
    if events is None:
        events = [_read_event(item, window, index)[0] for index, item in enumerate(body)]
    stored, headers = await _accept(request, caller, events, batch=True, shaped=shaped)
    if stored is None:
        body = {**DROPPED, "accepted": 0, "event_ids": []}
        return JSONResponse(body, status_code=202, headers=headers)
    event_ids = [item.event_id for item in stored]
    return JSONResponse(
        {"status": "accepted", "accepted": len(event_ids), "event_ids": event_ids},
        status_code=202,
        headers=headers,
    )


def _with_cors(endpoint: Endpoint) -> Endpoint:
    """Refusals carry the CORS headers too, so a browser tracker reads the 400 or 429 it
    was sent instead of an opaque network error it cannot tell from an outage."""

    @functools.wraps(endpoint)
    async def answer(request: IngestRequest) -> Response:
        try:
            return await endpoint(request)
        except APIError as exc:
            refusal = exc
        except (*REDIS_ERRORS, EngineUnavailable) as exc:
            refusal = engine_unavailable(request, exc)
        request.state["metrics"].ingest_refused.labels(str(refusal.status_code)).inc()
        refusal.headers.update(await error_cors_headers(request))
        raise refusal

    return answer


def routes() -> list[BaseRoute]:
    """Ingest routes, each also under `/api`."""
    paths = ("/event", "/events")
    endpoints = (_with_cors(post_event), _with_cors(post_events))
    return [
        *api_routes("POST", zip(paths, endpoints, strict=True)),
        *api_routes("OPTIONS", [(path, preflight) for path in paths]),
    ]

"""POST /event and POST /events: admit the client, read its events, store them in the
stream, answer 202. Each route reads top to bottom: admission (ingest/admission.py),
the body (ingest/bodies.py), the site and its charge, then storage (_store)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeAlias

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
    engine_unavailable,
    header,
    read_json,
    retry_later,
    unavailable,
)
from foundation.metrics import Metrics
from ingest import plausible
from ingest.admission import AdmissionState, Grant, admit
from ingest.agents import AGENT_CACHE_SIZE, describe
from ingest.bodies import read_batch, read_event
from ingest.bots import is_bot
from ingest.cors import preflight, refusal_headers
from ingest.encode import Encoded, encode
from ingest.geo import country
from ingest.places import NOWHERE, Place, Places
from ingest.stream import PartlyStored, StreamWriter
from ingest.visitors import RequestVisitor
from schemas.entry import ClientColumns
from schemas.event import EventIn

log = logging.getLogger(__name__)


class IngestState(AdmissionState):
    """What the ingest routes read from the app's lifespan state."""

    writer: StreamWriter
    metrics: Metrics
    places: Places | None


IngestRequest: TypeAlias = Request[IngestState]

# The answer to a bot's events: 202, as for any accepted event, saying they were dropped.
DROPPED = {"status": "dropped", "reason": "bot"}


async def post_event(request: IngestRequest) -> Response:
    """Accept one event (hitstream's shape or Plausible's); 202 once it is in the stream."""
    admission = await admit(request)
    settings = request.state["settings"]
    body = await read_json(request, settings.max_body_bytes, BEACON_TYPES)
    event, shaped = read_event(body, settings.raw_ttl_days)
    grant = await admission.grant([event], [shaped], batch=False)
    stored = await store(request, grant)
    if shaped:
        return plausible.answer(stored is None, grant.headers)
    if stored is None:
        return JSONResponse({**DROPPED, "event_id": None}, status_code=202, headers=grant.headers)
    answer = {"status": "accepted", "event_id": stored[0].event_id}
    return JSONResponse(answer, status_code=202, headers=grant.headers)


async def post_events(request: IngestRequest) -> Response:
    """Accept a JSON array of events, all or nothing; 202 once all are in the stream."""
    admission = await admit(request)
    settings = request.state["settings"]
    body = await read_json(request, settings.max_body_bytes, BEACON_TYPES)
    limit, public = admission.max_batch, admission.public
    events, shaped = read_batch(body, settings.raw_ttl_days, limit, public)
    grant = await admission.grant(events, shaped, batch=True)
    stored = await store(request, grant)
    if stored is None:
        dropped = {**DROPPED, "accepted": 0, "event_ids": []}
        return JSONResponse(dropped, status_code=202, headers=grant.headers)
    event_ids = [item.event_id for item in stored]
    answer = {"status": "accepted", "accepted": len(event_ids), "event_ids": event_ids}
    return JSONResponse(answer, status_code=202, headers=grant.headers)


async def store(request: IngestRequest, grant: Grant) -> list[Encoded] | None:
    """Encode the granted events (their visitor, software and country) and append them
    to the stream; None: dropped, a bot's."""
    metrics, user_agent = request.state["metrics"], header(request, "user-agent") or ""
    if _from_a_bot(grant.events, user_agent):
        metrics.bot_events_dropped.inc(len(grant.events))
        return None
    visitor = RequestVisitor(await request.state["salts"].today(), grant.ip, user_agent)
    client = _client(request, user_agent, grant.ip)
    encoded = encode(
        grant.events, datetime.now(UTC), site_id=grant.site_id, visitor=visitor, client=client
    )
    await _append(request, encoded)
    metrics.events_accepted.inc(len(encoded))
    return encoded


def _client(request: IngestRequest, user_agent: str, ip: str) -> ClientColumns:
    """The visitor's software and place: country, and region and city when a city
    database is configured (the address itself is not kept)."""
    code = country(ip)
    places = request.state["places"]
    place = NOWHERE if places is None else places.place(ip, code)
    return _columns(describe(user_agent), code, place)


@functools.lru_cache(maxsize=AGENT_CACHE_SIZE)
def _columns(software: ClientColumns, code: str, place: Place) -> ClientColumns:
    """A User-Agent's columns with a country and place (cached: few pairs recur)."""
    return dataclasses.replace(
        software,
        country=code,
        region=place.region,
        region_name=place.region_name,
        city_name=place.city_name,
    )


def _from_a_bot(events: Sequence[EventIn], user_agent: str) -> bool:
    """A crawler's or headless browser's page views. Judged only on events that carry a
    browser's context (a page URL or a referrer): a server sending path-only events
    (the seeds' curl examples) speaks for its visitors, not as one."""
    return any(e.url or e.referrer for e in events) and is_bot(user_agent)


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


def with_cors(endpoint: Endpoint) -> Endpoint:
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
        refusal.headers.update(await refusal_headers(request))
        raise refusal

    return answer


def routes() -> list[BaseRoute]:
    """Ingest routes, each also under `/api`."""
    paths = ("/event", "/events")
    endpoints = (with_cors(post_event), with_cors(post_events))
    return [
        *api_routes("POST", zip(paths, endpoints, strict=True)),
        *api_routes("OPTIONS", [(path, preflight) for path in paths]),
    ]

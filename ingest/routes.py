"""POST /event and POST /events: validate, normalise, append to the stream, answer 202."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hitstream.errors import StreamUnavailable
from hitstream.http import APIError, JSONResponse, api_routes, validation_details
from ingest.stream import StreamWriter
from schemas.event import Encoded, EventBatch, EventIn, to_row

RETRY_AFTER_S = "1"


async def _append(request: Request, events: list[Encoded]) -> None:
    """Append to the stream, or answer 503 + Retry-After when it cannot take them now."""
    writer: StreamWriter = request.state.writer
    if writer.overloaded:
        raise APIError(
            503,
            "ingest is over its backlog limit, retry later",
            [{"field": "stream", "message": f"backlog of {writer.backlog} entries"}],
            headers={"Retry-After": RETRY_AFTER_S},
        )
    try:
        await writer.append(events)
    except StreamUnavailable as exc:
        raise APIError(
            503,
            "event stream unavailable, retry later",
            [{"field": "stream", "message": str(exc)}],
            headers={"Retry-After": RETRY_AFTER_S},
        ) from exc


async def post_event(request: Request) -> Response:
    """Accept one event; 202 once it is stored in the stream."""
    body = await request.body()
    try:
        event = EventIn.model_validate_json(body)
    except ValidationError as exc:
        raise APIError(400, "invalid event", validation_details(exc)) from None
    encoded = to_row(event, datetime.now(UTC))
    await _append(request, [encoded])
    return JSONResponse({"status": "accepted", "event_id": encoded.event_id}, status_code=202)


async def post_events(request: Request) -> Response:
    """Accept a JSON array of events, all or nothing; 202 once all are in the stream."""
    body = await request.body()
    try:
        events = EventBatch.validate_json(body)
    except ValidationError as exc:
        details = validation_details(exc)
        first = details[0].get("index") if details else None
        where = f": event {first} is invalid" if first is not None else ""
        raise APIError(400, f"invalid batch{where}; nothing was accepted", details) from None
    limit: int = request.state.max_batch_events
    if not events:
        raise APIError(400, "empty batch", [{"field": "body", "message": "at least one event"}])
    if len(events) > limit:
        raise APIError(
            400,
            f"batch too large: {len(events)} events, at most {limit}",
            [{"field": "body", "message": f"at most {limit} events per request"}],
        )
    received_at = datetime.now(UTC)
    encoded = [to_row(event, received_at) for event in events]
    await _append(request, encoded)
    return JSONResponse(
        {
            "status": "accepted",
            "accepted": len(encoded),
            "event_ids": [e.event_id for e in encoded],
        },
        status_code=202,
    )


def routes() -> list[BaseRoute]:
    """Ingest routes, each also under `/api`."""
    return api_routes("POST", [("/event", post_event), ("/events", post_events)])

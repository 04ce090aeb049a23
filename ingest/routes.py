"""POST /event and POST /events: validate, normalise, append to the stream, answer 202."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hitstream.errors import StreamUnavailable
from hitstream.http import APIError, JSONResponse, validation_details
from ingest.stream import StreamWriter
from schemas.event import EventBatch, EventIn, to_row

RETRY_AFTER_S = "1"


def _writer(request: Request) -> StreamWriter:
    writer: StreamWriter = request.state.writer
    return writer


def _unavailable(exc: StreamUnavailable) -> APIError:
    return APIError(
        503,
        "event stream unavailable, retry later",
        [{"field": "stream", "message": str(exc)}],
        headers={"Retry-After": RETRY_AFTER_S},
    )


async def post_event(request: Request) -> Response:
    """Accept one event; 202 once it is stored in the stream."""
    body = await request.body()
    try:
        event = EventIn.model_validate_json(body)
    except ValidationError as exc:
        raise APIError(400, "invalid event", validation_details(exc)) from None
    event_id, row = to_row(event, datetime.now(UTC))
    try:
        await _writer(request).append(row)
    except StreamUnavailable as exc:
        raise _unavailable(exc) from exc
    return JSONResponse({"status": "accepted", "event_id": event_id}, status_code=202)


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
    try:
        await _writer(request).append_many([row for _, row in encoded])
    except StreamUnavailable as exc:
        raise _unavailable(exc) from exc
    return JSONResponse(
        {"status": "accepted", "accepted": len(encoded), "event_ids": [eid for eid, _ in encoded]},
        status_code=202,
    )


def routes() -> list[BaseRoute]:
    """Ingest routes, each also under `/api`."""
    table = [("/event", post_event), ("/events", post_events)]
    return [
        Route(prefix + path, endpoint, methods=["POST"])
        for path, endpoint in table
        for prefix in ("", "/api")
    ]

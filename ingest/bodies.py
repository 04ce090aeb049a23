"""Request bodies read as events: one event in hitstream's shape or Plausible's, or a
batch of them, all or nothing; a refusal is a 400 naming the field as it was sent."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from foundation.http import APIError, validation_details
from ingest import plausible
from schemas.event import EventBatch, EventIn, TimeWindow

# The validation context of a request's events (see `window`).
Window = dict[str, TimeWindow]


def window(retention_days: int) -> Window:
    """Validation context: timestamps must fall in the raw retention, not in the future."""
    return {"window": TimeWindow(datetime.now(UTC), retention_days)}


def read_event(body: Any, retention_days: int) -> tuple[EventIn, bool]:
    """One event of either shape (timestamps within `retention_days`), and whether it
    was Plausible's (ingest/plausible.py)."""
    return _event(body, window(retention_days))


def read_batch(
    body: Any, retention_days: int, limit: int, public: bool
) -> tuple[list[EventIn], list[bool]]:
    """A JSON array of at most `limit` events (`public`: sent without an API key), and
    which were in Plausible's shape; one invalid event refuses them all."""
    _check_batch(body, limit, public)
    context = window(retention_days)
    shaped = [plausible.is_plausible(item) for item in body]
    events: list[EventIn] | None = None
    if not any(shaped):  # hitstream's shape only: one validation call (0.6 us/event less)
        with contextlib.suppress(ValidationError):  # the loop below names what is wrong
            events = EventBatch.validate_python(body, context=context)
    if events is None:
        events = [_event(item, context, index)[0] for index, item in enumerate(body)]
    return events, shaped


def _event(body: Any, window: Window, index: int | None = None) -> tuple[EventIn, bool]:
    """One event of either shape, and whether it was Plausible's. A refusal names the
    fields as the body sent them; Plausible's shape always names its site (`domain`)."""
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


def _check_batch(body: Any, limit: int, public: bool) -> None:
    """400 unless the body is an array of 1 to `limit` items."""
    if isinstance(body, list) and not body:
        raise APIError(400, "empty batch", [{"field": "body", "message": "at least one event"}])
    if isinstance(body, list) and len(body) > limit:
        without_key = " without an API key" if public else ""
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


def require_site(events: Sequence[EventIn], batch: bool) -> None:
    """Without an API key naming the site, each event must name it."""
    missing = [i for i, event in enumerate(events) if event.site_id is None]
    if missing:
        detail = {"field": "site_id", "message": "Field required"}
        raise _invalid([detail], shaped=False, index=missing[0] if batch else None)


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

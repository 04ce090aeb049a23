"""Admission (ingest/admission.py) where no engine is asked: open mode without rate
limits, the batch limit, and what a grant checks of the events' sites. The paths that
verify keys and origins and charge buckets run against Valkey in test_rate_limits.py,
test_routes.py and tests/sites/."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from foundation.http import APIError
from foundation.settings import Settings
from ingest.admission import Admission, admit
from schemas.event import EventIn


def request(settings: Settings, **headers: str) -> Request[Any]:
    """A request whose lifespan state holds only settings: nothing here may reach Redis."""
    state = {"settings": settings, "site_cache": None, "rate_limiter": None, "salts": None}
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/event",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.9", 5000),
        "state": state,
    }
    return Request(scope)


def events(*site_ids: str | None) -> list[EventIn]:
    return [EventIn(site_id=s, event_type="pageview", path="/") for s in site_ids]


OPEN = Settings(ingest_auth="open", rate_limit_ip_per_s=0)


@pytest.mark.anyio
async def test_open_mode_admits_anyone_from_any_origin() -> None:
    admission = await admit(request(OPEN, origin="https://anywhere.example"))
    assert (admission.site_id, admission.public, admission.ip) == (None, False, "203.0.113.9")
    grant = await admission.grant(events("a", "b"), [False, False], batch=True)
    assert (grant.site_id, grant.ip) == (None, "203.0.113.9")
    assert grant.headers == {"Access-Control-Allow-Origin": "*"}


@pytest.mark.parametrize(
    ("batch", "error", "detail"),
    [
        (False, "invalid event", {"field": "site_id", "message": "Field required"}),
        (
            True,
            "invalid batch: event 1 is invalid; nothing was accepted",
            {"field": "site_id", "message": "Field required", "index": 1},
        ),
    ],
)
@pytest.mark.anyio
async def test_open_mode_needs_each_event_to_name_its_site(
    batch: bool, error: str, detail: dict[str, Any]
) -> None:
    admission = await admit(request(OPEN))
    with pytest.raises(APIError) as caught:
        await admission.grant(events("a", None), [False, False], batch=batch)
    assert (caught.value.status_code, caught.value.error) == (400, error)
    assert caught.value.details == [detail]


@pytest.mark.anyio
async def test_a_keys_events_must_name_its_site_or_none() -> None:
    admission = Admission(request(OPEN))
    admission.site_id, admission.cors_origin = "mine", None
    grant = await admission.grant(events(None, "mine"), [False, False], batch=True)
    assert (grant.site_id, grant.headers) == ("mine", {})
    with pytest.raises(APIError) as caught:
        await admission.grant(events("mine", "theirs"), [False, False], batch=True)
    assert caught.value.status_code == 403
    assert caught.value.details == [
        {"field": "site_id", "message": "this key writes to mine", "index": 1}
    ]


def test_a_browser_without_a_key_sends_small_batches() -> None:
    settings = Settings(max_batch_events=500, max_public_batch_events=10)
    admission = Admission(request(settings))
    assert admission.max_batch == 500
    admission.public = True
    assert admission.max_batch == 10

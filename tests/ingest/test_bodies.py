"""Request bodies read as events (ingest/bodies.py): either shape, batches, and the 400s
that name what is wrong (no engines involved)."""

from __future__ import annotations

from typing import Any

import pytest

from foundation.http import APIError
from ingest.bodies import read_batch, read_event

RETENTION = 90


def refusal(read: Any, *args: Any) -> APIError:
    with pytest.raises(APIError) as caught:
        read(*args)
    return caught.value


def test_an_event_of_each_shape_is_read_and_told_apart() -> None:
    event, shaped = read_event({"site_id": "s", "event_type": "pageview", "path": "/a"}, RETENTION)
    assert (event.site_id, event.path, shaped) == ("s", "/a", False)
    event, shaped = read_event(
        {"n": "pageview", "u": "https://shop.example/app#/cart", "d": "shop.example", "h": 1},
        RETENTION,
    )
    assert (event.site_id, event.path, shaped) == ("shop.example", "/app#/cart", True)


def test_a_plausible_refusal_names_the_fields_as_sent_with_plausibles_errors() -> None:
    error = refusal(read_event, {"n": "pageview", "d": "shop.example"}, RETENTION)
    assert error.status_code == 400 and error.error == "invalid event"
    assert [d["field"] for d in error.details] == ["path"]
    missing = refusal(read_event, {"n": "pageview", "u": "https://shop.example/"}, RETENTION)
    assert missing.details == [{"field": "d", "message": "Field required"}]
    assert missing.extra == {"errors": {"d": ["Field required"]}}


def test_a_batch_is_read_whole_and_says_which_events_were_plausibles() -> None:
    body = [
        {"site_id": "s", "event_type": "pageview", "path": "/"},
        {"name": "pageview", "url": "https://shop.example/", "domain": "shop.example"},
    ]
    events, shaped = read_batch(body, RETENTION, limit=10, public=False)
    assert [e.site_id for e in events] == ["s", "shop.example"] and shaped == [False, True]


@pytest.mark.parametrize(
    ("body", "public", "error", "message"),
    [
        ([], False, "empty batch", "at least one event"),
        ([{}] * 3, False, "batch too large: 3 events, at most 2", "at most 2 events per request"),
        (
            [{}] * 3,
            True,
            "batch too large: 3 events, at most 2 without an API key",
            "at most 2 events per request without an API key",
        ),
        ({"site_id": "s"}, False, "invalid batch; nothing was accepted", "must be a JSON array"),
    ],
)
def test_a_batch_of_the_wrong_size_or_shape_is_refused(
    body: Any, public: bool, error: str, message: str
) -> None:
    refused = refusal(read_batch, body, RETENTION, 2, public)
    assert refused.status_code == 400 and refused.error == error
    assert refused.details[0]["field"] == "body" and message in refused.details[0]["message"]


def test_a_batch_refusal_names_the_first_invalid_event() -> None:
    body = [{"site_id": "s", "event_type": "pageview", "path": "/"}, {"site_id": "s"}]
    refused = refusal(read_batch, body, RETENTION, 10, False)
    assert refused.error == "invalid batch: event 1 is invalid; nothing was accepted"
    assert {d["index"] for d in refused.details} == {1}

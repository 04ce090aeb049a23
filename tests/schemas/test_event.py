"""Validation and normalisation of incoming events, and the times they are stored with
(no engines involved)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from foundation import jsonbody
from schemas.event import EventBatch, EventIn, TimeWindow, clickhouse_time, epoch_ms, normalize_path

RECEIVED = datetime(2025, 11, 14, 12, 0, 0, 123000, tzinfo=UTC)
WINDOW = {"window": TimeWindow(now=RECEIVED, retention_days=90)}


def validate(body: object) -> EventIn:
    """As ingest does: strict JSON first, then the model, with the accepted time window."""
    # json.dumps, not orjson: it can write the lone surrogates some tests send.
    return EventIn.model_validate(jsonbody.parse(json.dumps(body).encode()), context=WINDOW)


def parse(**fields: object) -> EventIn:
    return validate({"site_id": "s", "event_type": "page_view", "path": "/", **fields})


def error_fields(exc: ValidationError) -> set[str]:
    return {str(err["loc"][-1]) for err in exc.errors()}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/pricing", "/pricing"),
        ("/pricing?utm=x&b=2", "/pricing"),
        ("/a#section", "/a"),
        ("https://example.com/blog/post-1?ref=home#top", "/blog/post-1"),
        ("http://example.com", "/"),
        ("pricing", "/pricing"),
        ("/?q=1", "/"),
        # Credentials in a URL are never kept, with or without its scheme.
        ("https://user:secret@example.com/p?q=1", "/p"),
        ("//user:secret@example.com/p", "/p"),
        ("user:secret@example.com/p", "/p"),
        ("user@example.com", "/"),
        ("/@handle/posts", "/@handle/posts"),
    ],
)
def test_path_is_reduced_to_its_path(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected
    assert parse(path=raw).path == expected


def test_camel_case_aliases_are_accepted() -> None:
    eid = uuid.uuid4()
    event = validate(
        {"siteId": "s1", "eventType": "click", "path": "/", "userId": "u", "eventId": str(eid)}
    )
    assert (event.site_id, event.event_type, event.user_id, event.event_id) == (
        "s1",
        "click",
        "u",
        eid,
    )


@pytest.mark.parametrize("missing", ["event_type", "path"])
def test_required_fields(missing: str) -> None:
    body = {"site_id": "s", "event_type": "page_view", "path": "/"}
    del body[missing]
    with pytest.raises(ValidationError) as info:
        validate(body)
    assert error_fields(info.value) == {missing}


def test_site_id_may_come_from_the_api_key() -> None:
    """The model leaves site_id optional; ingest requires it unless a key names the site."""
    event = validate({"event_type": "page_view", "path": "/"})
    assert event.site_id is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("site_id", 5),
        ("site_id", ""),
        ("event_type", ["page_view"]),
        ("path", ""),
        ("path", 12),
        ("user_id", 42),
        ("site_id", "a\x00b"),
        ("site_id", "x" * 129),
        ("path", "/" + "p" * 2048),
        ("timestamp", 1731582600),
        ("timestamp", "2025-11-14T10:30:00"),
        ("timestamp", "yesterday"),
        ("timestamp", "1969-12-31T00:00:00Z"),
        ("timestamp", "2025-11-14T12:06:00Z"),  # more than 5 minutes after RECEIVED
        ("timestamp", "2025-08-01T00:00:00Z"),  # older than the 90-day retention
        ("timestamp", "2025-11-14"),
        ("site_id", "has space"),
        ("site_id", "semi;colon"),
        ("site_id", "-leading-dash"),
        ("event_type", "sign\u202eup"),  # a bidirectional override (spaces are fine)
        ("event_type", "x" * 129),
        ("user_id", "u" * 257),
        ("user_id", "bad\ud800surrogate"),
        ("path", "/a\x00b"),
        ("path", "/next\u0085line"),  # C1 control (NEL)
        ("path", "/admin\u202egnp.exe"),  # right-to-left override
        ("user_id", "u\u2066isolate"),
        ("user_id", "u\x9b[31m"),  # C1 CSI, a terminal escape
        ("timestamp", "0001-01-01T00:00:00+01:00"),  # before year 1 once in UTC
        ("timestamp", "9999-12-31T23:59:59-01:00"),  # after year 9999 once in UTC
        ("event_id", "not-a-uuid"),
        ("event_id", 7),
    ],
)
def test_bad_values_are_rejected_with_their_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        parse(**{field: value})
    assert error_fields(info.value) == {field}


def test_unknown_fields_are_ignored() -> None:
    assert parse(metadata={"k": "v"}).site_id == "s"


def test_timestamps_inside_the_window_are_accepted() -> None:
    assert parse(timestamp="2025-11-14T12:04:59Z").timestamp is not None
    assert parse(timestamp="2025-08-17T00:00:00Z").timestamp is not None


def test_batch_errors_carry_the_index() -> None:
    body = [{"site_id": "s", "event_type": "t", "path": "/"}, {"site_id": "s"}]
    with pytest.raises(ValidationError) as info:
        EventBatch.validate_python(body, context=WINDOW)
    assert {err["loc"][0] for err in info.value.errors()} == {1}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "path"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "/relative"}, "url"),
        ({"path": "/", "props": {"a": {"nested": 1}}}, "props"),
        ({"path": "/", "props": {"a": [1]}}, "props"),
        ({"path": "/", "props": {"a": None}}, "props"),
        ({"path": "/", "props": {str(i): i for i in range(31)}}, "props"),
        ({"path": "/", "props": {"k" * 301: "v"}}, "props"),
        ({"path": "/", "props": {"": "v"}}, "props"),
        ({"path": "/", "props": {"k": "v" * 2001}}, "props"),
        ({"path": "/", "props": "flat?"}, "props"),
        ({"path": "/", "utm_source": ""}, "utm_source"),
        ({"path": "/", "utm_medium": "m" * 257}, "utm_medium"),
        ({"path": "/", "referrer": "r\u202egro"}, "referrer"),
        ({"path": "/", "url": "https://example.com/" + "p" * 2048}, "url"),
    ],
)
def test_bad_context_fields_are_400_naming_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate({"site_id": "s", "event_type": "pageview", **fields})
    assert field in error_fields(caught.value)


def test_epoch_ms_counts_exactly_the_milliseconds_clickhouse_time_writes() -> None:
    moment = datetime(2025, 11, 14, 12, 0, 0, 123999, tzinfo=UTC)
    assert clickhouse_time(moment) == "2025-11-14 12:00:00.123"
    assert epoch_ms(moment) == int(datetime(2025, 11, 14, 12, tzinfo=UTC).timestamp()) * 1000 + 123

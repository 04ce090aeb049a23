"""Validation and normalisation of incoming events (no engines involved)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from schemas.event import EventBatch, EventIn, normalize_path, to_row

RECEIVED = datetime(2025, 11, 14, 12, 0, 0, 123000, tzinfo=UTC)


def parse(**fields: object) -> EventIn:
    body = {"site_id": "s", "event_type": "page_view", "path": "/", **fields}
    return EventIn.model_validate_json(orjson.dumps(body))


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
    ],
)
def test_path_is_reduced_to_its_path(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected
    assert parse(path=raw).path == expected


def test_camel_case_aliases_are_accepted() -> None:
    eid = uuid.uuid4()
    event = EventIn.model_validate_json(
        orjson.dumps(
            {"siteId": "s1", "eventType": "click", "path": "/", "userId": "u", "eventId": str(eid)}
        )
    )
    assert (event.site_id, event.event_type, event.user_id, event.event_id) == (
        "s1",
        "click",
        "u",
        eid,
    )


@pytest.mark.parametrize("missing", ["site_id", "event_type", "path"])
def test_required_fields(missing: str) -> None:
    body = {"site_id": "s", "event_type": "page_view", "path": "/"}
    del body[missing]
    with pytest.raises(ValidationError) as info:
        EventIn.model_validate_json(orjson.dumps(body))
    assert error_fields(info.value) == {missing}


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
        ("event_id", "not-a-uuid"),
        ("event_id", 7),
    ],
)
def test_bad_values_are_rejected_with_their_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        parse(**{field: value})
    assert error_fields(info.value) == {field}


def test_timestamp_offset_is_converted_to_utc() -> None:
    row = orjson.loads(to_row(parse(timestamp="2025-11-15T01:30:00+05:30"), RECEIVED).row)
    assert row["ts"] == "2025-11-14 20:00:00.000"


def test_defaults_fill_event_id_time_and_anonymous_user() -> None:
    encoded = to_row(parse(), RECEIVED)
    row = orjson.loads(encoded.row)
    assert uuid.UUID(encoded.event_id) and row["event_id"] == encoded.event_id
    assert not encoded.client_id
    assert row["ts"] == row["received_at"] == "2025-11-14 12:00:00.123"
    assert row["user_id"] == ""


def test_client_event_id_is_kept() -> None:
    eid = uuid.uuid4()
    encoded = to_row(parse(event_id=str(eid)), RECEIVED)
    assert (encoded.event_id, encoded.client_id) == (str(eid), True)


def test_row_starts_with_the_event_id() -> None:
    """Consumers recognise rows by this prefix without parsing them."""
    encoded = to_row(parse(), RECEIVED)
    assert encoded.row.startswith(b'{"event_id":"' + encoded.event_id.encode() + b'",')


def test_unknown_fields_are_ignored() -> None:
    assert parse(metadata={"k": "v"}).site_id == "s"


def test_batch_errors_carry_the_index() -> None:
    body = orjson.dumps([{"site_id": "s", "event_type": "t", "path": "/"}, {"site_id": "s"}])
    with pytest.raises(ValidationError) as info:
        EventBatch.validate_json(body)
    assert {err["loc"][0] for err in info.value.errors()} == {1}

"""The stream entry format: what ingest writes is what every reader reads back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from ingest.encode import encode
from schemas import entry
from schemas.event import EventIn


def test_an_encoded_event_round_trips_through_its_entry() -> None:
    body = {"site_id": "s1", "event_type": "page_view", "path": "/a?b=1", "user_id": "u"}
    client_chosen = str(uuid.uuid4())
    [plain, chosen] = encode(
        [EventIn.model_validate(body), EventIn.model_validate({**body, "event_id": client_chosen})],
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    for encoded in (plain, chosen):
        decoded = entry.decode(b"1-0", entry.fields(encoded.row, encoded.client_id))
        assert decoded is not None
        assert decoded.event_id == encoded.event_id
        assert decoded.site_id() == "s1"
        assert decoded.client_id is encoded.client_id
        assert list(orjson.loads(decoded.row)) == list(entry.ROW_KEYS)
    assert chosen.event_id == client_chosen and chosen.client_id and not plain.client_id
    row = orjson.loads(plain.row)
    assert row["path"] == "/a" and row["ts"] == row["received_at"] == "2026-01-02 03:04:05.000"


def test_entries_that_are_not_ours_decode_to_none() -> None:
    event_id = str(uuid.uuid4())
    ours = entry.encode_row(
        event_id=event_id,
        site_id="s",
        event_type="t",
        path="/",
        user_id="",
        ts="x",
        received_at="x",
    )
    assert entry.decode(b"1-0", entry.fields(ours)) is not None
    for fields in (
        {},
        {b"other": ours},
        entry.fields(b""),
        entry.fields(b"not json"),
        entry.fields(b'{"site_id":"s","event_id":"' + event_id.encode() + b'"}'),
        entry.fields(ours[:20]),
    ):
        assert entry.decode(b"1-0", fields) is None, fields


def test_a_row_ends_with_its_tail_which_tail_format_fills() -> None:
    """What ingest's script relies on to write a visitor's number and a visit's id
    (ingest/lua/append_once.lua)."""
    common: dict[str, str] = {
        "event_id": str(uuid.uuid4()), "site_id": "s", "event_type": "pageview", "path": "/",
        "user_id": "", "ts": "2026-01-01 00:00:00.000", "received_at": "2026-01-01 00:00:00.000",
    }  # fmt: skip
    row = entry.encode_row(**common)
    assert row.endswith(entry.TAIL) and entry.TAIL == entry.TAIL_FORMAT % (0, 0)
    number, visit = 20_454 * entry.NUMBER_DAY + 3, 1_767_225_600_000
    spliced = row[: -len(entry.TAIL)] + entry.TAIL_FORMAT % (number, visit)
    assert spliced == entry.encode_row(**common, visitor_no=number, session_id=visit)

"""Accepted events encoded as stream rows: defaults, ids, times, the page's URL, props."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import orjson

from foundation import jsonbody
from ingest.encode import encode, random_uuids
from schemas import entry
from schemas.event import EventIn, TimeWindow, epoch_ms

RECEIVED = datetime(2025, 11, 14, 12, 0, 0, 123000, tzinfo=UTC)
WINDOW = {"window": TimeWindow(now=RECEIVED, retention_days=90)}


def validate(body: object) -> EventIn:
    """As ingest does: strict JSON first, then the model, with the accepted time window."""
    return EventIn.model_validate(jsonbody.parse(json.dumps(body).encode()), context=WINDOW)


def parse(**fields: object) -> EventIn:
    return validate({"site_id": "s", "event_type": "page_view", "path": "/", **fields})


def test_an_event_without_a_site_is_given_the_keys() -> None:
    event = validate({"event_type": "page_view", "path": "/"})
    assert (
        orjson.loads(encode([event], RECEIVED, site_id="from-key")[0].row)["site_id"] == "from-key"
    )


def test_timestamp_offset_is_converted_to_utc() -> None:
    row = orjson.loads(encode([parse(timestamp="2025-11-14T15:30:00+05:30")], RECEIVED)[0].row)
    assert row["ts"] == "2025-11-14 10:00:00.000"


def test_defaults_fill_event_id_time_and_anonymous_user() -> None:
    encoded = encode([parse()], RECEIVED)[0]
    row = orjson.loads(encoded.row)
    assert uuid.UUID(encoded.event_id) and row["event_id"] == encoded.event_id
    assert not encoded.client_id
    assert row["ts"] == row["received_at"] == "2025-11-14 12:00:00.123"
    assert row["user_id"] == ""


def test_generated_event_ids_are_distinct_version_4_uuids() -> None:
    encoded = encode([parse()] * 1000, RECEIVED)
    ids = {uuid.UUID(item.event_id) for item in encoded}
    assert len(ids) == 1000
    assert {(i.version, i.variant) for i in ids} == {(4, uuid.RFC_4122)}


def test_client_event_id_is_kept() -> None:
    eid = uuid.uuid4()
    [encoded] = encode([parse(event_id=str(eid))], RECEIVED)
    assert (encoded.event_id, encoded.client_id) == (str(eid), True)


def test_row_starts_with_the_event_id() -> None:
    """Consumers recognise rows by this prefix without parsing them."""
    encoded = encode([parse()], RECEIVED)[0]
    assert encoded.row.startswith(b'{"event_id":"' + encoded.event_id.encode() + b'",')


def row(**fields: object) -> dict[str, object]:
    body = {"site_id": "s", "event_type": "pageview", **fields}
    result: dict[str, object] = orjson.loads(encode([validate(body)], RECEIVED)[0].row)
    return result


def test_the_page_url_gives_path_hostname_and_utm_and_explicit_fields_win() -> None:
    stored = row(
        url="https://example.com/landing?utm_source=google&utm_campaign=spring&ref=x",
        utm_campaign="summer",
        referrer="https://www.bing.com/search?q=me",
    )
    assert stored["path"] == "/landing" and stored["hostname"] == "example.com"
    assert stored["utm_source"] == "google" and stored["utm_campaign"] == "summer"
    assert stored["utm_medium"] == "" and stored["referrer"] == "bing.com/search"
    assert row(path="/explicit", url="https://example.com/from-url")["path"] == "/explicit"
    assert row(path="/alone")["hostname"] == ""


def test_an_ad_click_is_stored_as_its_parameters_name_never_its_id() -> None:
    stored = row(url="https://example.com/?gclid=Cj0KCQ-secret&utm_medium=cpc")
    assert stored["click_id_param"] == "gclid"
    assert "Cj0KCQ-secret" not in orjson.dumps(stored).decode()
    assert row(url="https://example.com/")["click_id_param"] == ""
    assert row(path="/no-url")["click_id_param"] == ""


def test_props_are_stored_as_text() -> None:
    props = {"plan": "pro", "seats": 3, "ratio": 0.5, "trial": False, "big": 10**20}
    assert row(path="/", props=props)["props"] == {
        "plan": "pro",
        "seats": "3",
        "ratio": "0.5",
        "trial": "false",
        "big": "100000000000000000000",
    }


def test_the_limits_themselves_are_accepted() -> None:
    props = {f"{i:0300d}": "v" * 2000 for i in range(30)}
    stored = row(path="/", props=props)["props"]
    assert isinstance(stored, dict) and len(stored) == 30


def test_the_keys_site_wins_and_each_event_is_given_its_visitor_and_client() -> None:
    asked: list[tuple[str, str | None]] = []

    def visitor(site_id: str, user_id: str | None) -> tuple[int, int]:
        asked.append((site_id, user_id))
        return 7, 0

    client = entry.ClientColumns("Firefox", "133.0", "Linux", "", "desktop", "DE")
    encoded = encode(
        [parse(user_id="u1"), parse()], RECEIVED, site_id="keyed", visitor=visitor, client=client
    )
    assert asked == [("keyed", "u1"), ("keyed", None)]
    assert [(e.site_id, e.visitor_id) for e in encoded] == [("keyed", 7), ("keyed", 7)]
    stored = orjson.loads(encoded[0].row)
    assert (stored["site_id"], stored["visitor_id"], stored["browser"]) == ("keyed", 7, "Firefox")
    assert stored["country"] == "DE"


def test_engagement_events_join_no_visit_and_carry_the_rows_time_in_ms() -> None:
    [pageview, engagement] = encode(
        [parse(timestamp="2025-11-14T11:00:00.5Z"), parse(event_type="engagement")],
        RECEIVED,
        visitor=lambda site_id, user_id: (9, 20_454),
    )
    assert (pageview.visitor_id, engagement.visitor_id) == (9, 0)
    assert (pageview.number_day, engagement.number_day) == (20_454, 0)
    assert pageview.ts_ms == epoch_ms(datetime(2025, 11, 14, 11, 0, 0, 500000, tzinfo=UTC))
    assert engagement.ts_ms == epoch_ms(RECEIVED)
    assert orjson.loads(engagement.row)["visitor_id"] == 9  # the row keeps its visitor


def test_random_uuids_are_as_many_as_asked() -> None:
    assert random_uuids(0) == []
    ids = random_uuids(3)
    assert len(set(ids)) == 3 and all(uuid.UUID(i).version == 4 for i in ids)

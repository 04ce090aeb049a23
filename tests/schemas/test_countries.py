"""Country names as Plausible shows them, from iso-codes (schemas/countries.py)."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.countries import COUNTRY_NAMES, country_name

# Debian's iso-codes (make test installs it): the data the table was generated from.
ISO_CODES = Path("/usr/share/iso-codes/json/iso_3166-1.json")


def test_names() -> None:
    assert country_name("US") == "United States"
    assert country_name("GB") == "United Kingdom"
    assert country_name("KR") == "South Korea"  # iso-codes' common name
    assert country_name("CI") == "Côte d'Ivoire"
    assert country_name("XK") == "Kosovo"  # Plausible's addition
    assert country_name("") == country_name("ZZ") == ""


def test_the_table_is_iso_codes_common_or_short_names() -> None:
    entries = json.loads(ISO_CODES.read_text(encoding="utf-8"))["3166-1"]
    expected = {e["alpha_2"]: e.get("common_name") or e["name"] for e in entries}
    assert {**expected, "XK": "Kosovo"} == dict(COUNTRY_NAMES)

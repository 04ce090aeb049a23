"""Plausible's names: the renames ingest applies, and the SQL migration 0018 renders
from the same tables (run against stored rows in tests/schemas/test_names_migration.py)."""

from __future__ import annotations

import pytest

from schemas import names
from schemas.migrate import MIGRATIONS_DIR, load_migrations


@pytest.mark.parametrize(
    ("family", "name"),
    [
        ("Mobile Safari", "Safari"),
        ("Chrome Mobile", "Chrome"),
        ("Chrome Mobile iOS", "Chrome"),
        ("Firefox Mobile", "Firefox"),
        ("Firefox iOS", "Firefox"),
        ("Opera Mini", "Opera"),
        ("Edge", "Microsoft Edge"),
        ("Samsung Internet", "Samsung Browser"),
        ("Chrome Mobile WebView", "Mobile App"),
        ("IE", "Internet Explorer"),
        ("Chrome", "Chrome"),
        ("Yandex Browser", "Yandex Browser"),
        ("", ""),
    ],
)
def test_browser_names(family: str, name: str) -> None:
    assert names.browser_name(family) == name


def test_os_and_device_names() -> None:
    assert names.os_name("Mac OS X", "Desktop") == "Mac"
    assert names.os_name("Linux", "Desktop") == "GNU/Linux"
    assert names.os_name("iOS", "Tablet") == "iPadOS"
    assert names.os_name("iOS", "Mobile") == "iOS"
    assert names.os_name("Windows", "Desktop") == "Windows"
    assert [names.device_name(k) for k in ("desktop", "mobile", "tablet", "")] == [
        "Desktop",
        "Mobile",
        "Tablet",
        "",
    ]
    assert names.browser_version("Mobile App", "124.0") == ""
    assert names.browser_version("Chrome", "124.0") == "124.0"


def test_referrer_parts() -> None:
    assert names.referrer_host("www.www.example.org") == "example.org"
    assert names.referrer_host("wwwexample.org") == "wwwexample.org"
    assert names.referrer_path("/a/b//") == "/a/b"
    assert names.referrer_path("/") == ""


def test_no_new_name_is_an_old_one() -> None:
    """Renaming twice changes nothing: what the migration's re-run relies on."""
    for mapping in (names.BROWSERS, names.OPERATING_SYSTEMS, names.DEVICES, names.SOURCE_RENAMES):
        assert not set(mapping.values()) & set(mapping)


def test_the_migration_renders_the_tables_and_quotes_no_name() -> None:
    """One owner: 0018's SQL holds placeholders filled from schemas/names.py."""
    written = (MIGRATIONS_DIR / "0018_plausible_names.sql").read_text()
    sql = "\n".join(line for line in written.splitlines() if not line.startswith("--"))
    assert "'" not in sql and "{names_up}" in sql and "{names_down}" in sql
    (step,) = [m for m in load_migrations(30) if m.version == 18]
    for statement in step.up:
        assert names.sql_up() in statement
        assert "'Mobile Safari', 'Chrome Mobile iOS'" in statement
    for statement in step.down:
        assert names.sql_down() in statement

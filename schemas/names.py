"""Plausible's names for what ingest derives about a visit (browser, OS, device, source,
referrer): the one table that ingest names new events by and that migration 0018 renames
stored rows by (its placeholders, rendered here as ClickHouse expressions).

Plausible parses agents with UAInspector (Matomo's device-detector data) and renames a few
results (plausible/analytics `lib/plausible/ingestion/event.ex`: `browser_name/1`,
`os_name/1`, `screen_size/1`); hitstream parses with ua-parser (uap-core), whose family
names differ for the same agents. The renames below give Plausible's names for the
families uap-core reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

IOS = "iOS"
IPADOS = "iPadOS"  # device-detector names iOS on an iPad so; uap-core says iOS
ANDROID = "Android"
APPLE_MOBILE = (IOS, IPADOS)
# A browser inside an app (a web view, Facebook's or Instagram's own): Plausible's
# "Mobile App" has no version.
MOBILE_APP = "Mobile App"


@dataclass(frozen=True)
class Rename:
    """A uap-core browser family and Plausible's name for it. `os` and `device` say which
    rows of the new name the family stood for, for migration 0018's down half (its
    rows are told apart by them); a rename without them is undone only if `undo`."""

    family: str
    name: str
    os: tuple[str, ...] = ()
    device: str = ""
    undo: bool = True


BROWSER_RENAMES = (
    Rename("Mobile Safari", "Safari", os=APPLE_MOBILE),
    Rename("Chrome Mobile iOS", "Chrome", os=APPLE_MOBILE),
    Rename("Chrome Mobile", "Chrome", os=(ANDROID,), device="Mobile"),
    Rename("Firefox iOS", "Firefox", os=APPLE_MOBILE),
    Rename("Firefox Mobile", "Firefox", os=(ANDROID,)),
    Rename("Opera Mobile", "Opera", os=(ANDROID,), device="Mobile"),
    Rename("Opera Mini", "Opera", undo=False),
    Rename("Edge Mobile", "Microsoft Edge", os=(ANDROID,)),
    Rename("Edge", "Microsoft Edge"),
    Rename("Samsung Internet", "Samsung Browser"),
    Rename("IE", "Internet Explorer"),
    Rename("IE Mobile", "Internet Explorer", undo=False),
    Rename("Yandex Browser Lite", "Yandex Browser", undo=False),
    Rename("Chrome Mobile WebView", MOBILE_APP, os=(ANDROID,)),
    Rename("Mobile Safari UI/WKWebView", MOBILE_APP, os=APPLE_MOBILE),
    Rename("Facebook", MOBILE_APP, undo=False),
    Rename("Instagram", MOBILE_APP, undo=False),
)
BROWSERS: Mapping[str, str] = {rename.family: rename.name for rename in BROWSER_RENAMES}
OPERATING_SYSTEMS: Mapping[str, str] = {"Mac OS X": "Mac", "Linux": "GNU/Linux"}
DEVICES: Mapping[str, str] = {"desktop": "Desktop", "mobile": "Mobile", "tablet": "Tablet"}
TABLET = DEVICES["tablet"]
# Sources whose name in hitstream's table (schemas/referrer_sources.toml) was renamed to
# Plausible's (referers.yml and custom_sources.json); the table now holds the new names
# and keeps the old ones as campaign aliases. `X (Twitter)` is Plausible's current name.
SOURCE_RENAMES: Mapping[str, str] = {
    "Yahoo": "Yahoo!",
    "VK": "Vkontakte",
    "Gemini": "Google Gemini",
    "Copilot": "Microsoft Copilot",
    "YouTube": "Youtube",
}
# Filter values that stand for a stored value as well (a `visit:source` of `Twitter`, the
# name older Plausible stored and its v1 docs show, also matches `X (Twitter)`).
SOURCE_FILTER_ALIASES: Mapping[str, str] = {"Twitter": "X (Twitter)"}


def browser_name(family: str) -> str:
    """Plausible's name for a uap-core browser family."""
    return BROWSERS.get(family, family)


def browser_version(name: str, version: str) -> str:
    """The version stored with a browser named `name` (none for a mobile app)."""
    return "" if name == MOBILE_APP else version


def os_name(family: str, device: str) -> str:
    """Plausible's name for a uap-core OS family on a device (Plausible's device name)."""
    if family == IOS and device == TABLET:
        return IPADOS
    return OPERATING_SYSTEMS.get(family, family)


def device_name(kind: str) -> str:
    """Plausible's name for a device type (desktop, mobile, tablet)."""
    return DEVICES.get(kind, kind)


def referrer_host(host: str) -> str:
    """A referrer's host as Plausible stores it: without its leading `www.`s."""
    while host.startswith("www."):
        host = host[4:]
    return host


def referrer_path(path: str) -> str:
    """A referrer's path as Plausible stores it: no trailing `/` (the root gives '')."""
    return path.rstrip("/")


def source_filter_values(values: tuple[str, ...], case_sensitive: bool) -> tuple[str, ...]:
    """A `visit:source` filter's values, each alias followed by the stored value it
    stands for (compared as the filter compares: with or without case)."""
    aliases = {
        (alias if case_sensitive else alias.lower()): stored
        for alias, stored in SOURCE_FILTER_ALIASES.items()
    }
    out = list(values)
    for value in values:
        stored = aliases.get(value if case_sensitive else value.lower())
        if stored is not None and stored not in out:
            out.append(stored)
    return tuple(out)


# Migration 0018 renders the rules above as ClickHouse expressions over a row's columns
# (every expression reads the row as it was before the statement, as ClickHouse's UPDATE
# does): `{names_up}` names rows as ingest now does, `{names_down}` as it did before.


def _text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _array(values: Iterable[str]) -> str:
    return "[" + ", ".join(_text(value) for value in values) + "]"


def _transform(column: str, mapping: Mapping[str, str]) -> str:
    return f"transform({column}, {_array(mapping)}, {_array(mapping.values())}, {column})"


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(_text(value) for value in values)})"


MOBILE_APP_FAMILIES = tuple(r.family for r in BROWSER_RENAMES if r.name == MOBILE_APP)
# What ClickHouse's re2 reads as a leading `www.` (one or more) and a trailing `/`.
_WWW, _TRAILING_SLASH = r"^(www\\.)+", "/+$"


def sql_up() -> str:
    """The SET list and condition of an UPDATE giving stored rows Plausible's names."""
    stale = " OR ".join(
        (
            _in("browser", BROWSERS),
            _in("os", OPERATING_SYSTEMS),
            f"(os = {_text(IOS)} AND device = 'tablet')",
            _in("device", DEVICES),
            _in("source", SOURCE_RENAMES),
            f"match(referrer, '{_WWW}|{_TRAILING_SLASH}')",
        )
    )
    return (
        f"browser = {_transform('browser', BROWSERS)},\n"
        f"    browser_version = if({_in('browser', MOBILE_APP_FAMILIES)}, '', browser_version),\n"
        f"    os = if(os = {_text(IOS)} AND device = 'tablet', {_text(IPADOS)},"
        f" {_transform('os', OPERATING_SYSTEMS)}),\n"
        f"    device = {_transform('device', DEVICES)},\n"
        f"    source = {_transform('source', SOURCE_RENAMES)},\n"
        f"    referrer = replaceRegexpOne(replaceRegexpOne(referrer, '{_WWW}', ''),"
        f" '{_TRAILING_SLASH}', '')\n"
        f"WHERE {stale}"
    )


def _browser_down() -> str:
    """The uap-core family a row named by Plausible's name had (see Rename)."""
    branches = []
    for rename in BROWSER_RENAMES:
        if not rename.undo:
            continue
        test = [f"browser = {_text(rename.name)}"]
        if rename.os:
            test.append(_in("os", rename.os))
        if rename.device:
            test.append(f"device = {_text(rename.device)}")
        branches.append(f"{' AND '.join(test)}, {_text(rename.family)}")
    return "multiIf(" + ", ".join(branches) + ", browser)"


def sql_down() -> str:
    """The SET list and condition of an UPDATE giving rows ingest's former names (the
    renames without `undo`, mobile apps' versions and referrers' `www.` are not restored)."""
    olds = {rename.name for rename in BROWSER_RENAMES if rename.undo}
    undone_os = {name: family for family, name in OPERATING_SYSTEMS.items()}
    undone_os[IPADOS] = IOS
    undone_devices = {name: kind for kind, name in DEVICES.items()}
    undone_sources = {name: old for old, name in SOURCE_RENAMES.items()}
    stale = " OR ".join(
        (
            _in("browser", sorted(olds)),
            _in("os", undone_os),
            _in("device", undone_devices),
            _in("source", undone_sources),
        )
    )
    return (
        f"browser = {_browser_down()},\n"
        f"    os = {_transform('os', undone_os)},\n"
        f"    device = {_transform('device', undone_devices)},\n"
        f"    source = {_transform('source', undone_sources)}\n"
        f"WHERE {stale}"
    )

"""Browser, OS and device type from the User-Agent, parsed in memory at ingest, under
Plausible's names (schemas/names.py).

The string itself is never stored; what is kept is its parsed family and version. It is
parsed here rather than in the consumers because it may not reach the stream (it
identifies visitors). Parsing with ua-parser's compiled matcher (ua-parser-rs) costs
about 13 us per new agent; agents repeat (a site sees a few hundred distinct ones a
day), so results are cached and a repeated agent costs a dictionary lookup.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ua_parser import Parser, load_builtins
from ua_parser.regex import Resolver

from schemas import names
from schemas.entry import ClientColumns
from schemas.urls import UNSAFE

AGENT_CACHE_SIZE = 16_384
MAX_AGENT = 1024  # longer strings are cut before parsing (no real agent is this long)


@functools.cache
def parser() -> Parser:
    """ua-parser's compiled matcher, built once on first use: it holds about 24 MB, which
    a process that never reads an agent (`hitstream consume`, `report`) does not need.
    An ingest process builds it at startup (hitstream/app.py), not on its first event."""
    return Parser(Resolver(load_builtins()))


TABLET_DEVICES = frozenset({"iPad", "Kindle", "Kindle Fire"})


def _version(major: str | None, minor: str | None) -> str:
    if not major:
        return ""
    return f"{major}.{minor}" if minor else major


MAX_NAME = 64


def _known(family: str) -> str:
    """A parsed name as stored: '' for ua-parser's Other, cleaned and bounded (some rules
    capture text from the agent itself)."""
    return "" if family == "Other" else UNSAFE.sub("", family)[:MAX_NAME]


@dataclass(frozen=True, slots=True)
class Reading:
    """What is stored of an agent, and whether ua-parser knows it as a spider."""

    columns: ClientColumns
    spider: bool


def describe(user_agent: str) -> ClientColumns:
    """The browser, OS and device type of a User-Agent (cached; no country)."""
    return read(user_agent).columns


@functools.lru_cache(maxsize=AGENT_CACHE_SIZE)
def read(user_agent: str) -> Reading:
    """Parse a User-Agent once (cached): the stored columns and the spider flag."""
    text = user_agent[:MAX_AGENT]
    result = parser().parse(text) if text.strip() else None
    browser = result.user_agent if result else None
    system = result.os if result else None
    device = result.device if result else None
    browser_family = _known(browser.family) if browser else ""
    os_family = _known(system.family) if system else ""
    kind = _device_type(text, device.family if device else "", os_family)
    device_name = names.device_name(kind) if browser_family or os_family else ""
    browser_name = names.browser_name(browser_family)
    version = _known(_version(browser.major, browser.minor)) if browser else ""
    columns = ClientColumns(
        browser=browser_name,
        browser_version=names.browser_version(browser_name, version),
        os=names.os_name(os_family, device_name),
        os_version=_known(_version(system.major, system.minor)) if system else "",
        device=device_name,
    )
    return Reading(columns, spider=device is not None and device.family == "Spider")


def _device_type(text: str, family: str, os_family: str) -> str:
    """Tablet, mobile or desktop, by the conventions browsers follow (MDN: a phone's
    agent says "Mobi"; an Android tablet's does not)."""
    if (
        family in TABLET_DEVICES
        or "Tablet" in text
        or (os_family == "Android" and "Mobi" not in text)
    ):
        return "tablet"
    if "Mobi" in text or os_family in ("iOS", "Android") or family in ("iPhone", "iPod"):
        return "mobile"
    return "desktop"

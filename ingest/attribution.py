"""Where a visit came from: the referrer's host named after a known source (Google,
Reddit, Hacker News, ...) from hitstream's table (schemas/sources.py), a campaign's
utm_source, or nothing (direct). Ingest attributes each event once, as it encodes it."""

from __future__ import annotations

import functools

from schemas.sources import SOURCES
from schemas.urls import normalize_referrer


def bare_host(host: str) -> str:
    """A host as sources compare it: lower case, no trailing dot, no leading `www.`."""
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


@functools.lru_cache(maxsize=65_536)
def source_of_host(host: str) -> str:
    """The source a referrer host stands for: its known name, else the host itself."""
    bare = bare_host(host)
    known = SOURCES.of_host(bare)
    return known.name if known is not None else bare


@functools.lru_cache(maxsize=4096)
def source_of_campaign(utm_source: str) -> str:
    """utm_source as a source: a known source's name when it names one (google,
    fb, news.ycombinator.com), else as the campaign wrote it."""
    key = utm_source.strip().lower()
    known = SOURCES.campaign_names.get(key) or SOURCES.campaign_names.get(bare_host(key))
    return known.name if known is not None else utm_source


# A referrer on these hosts is no referrer (a developer's own machine), as in Plausible.
NO_REFERRER_HOSTS = frozenset({"localhost"})


def is_self_referral(referrer_host: str, page_host: str) -> bool:
    """A referrer on the page's own host (`www.` aside) or on localhost: internal
    navigation or a developer's machine, no referrer."""
    bare = bare_host(referrer_host)
    return bare in NO_REFERRER_HOSTS or (bool(page_host) and bare == bare_host(page_host))


# Visitors come from few places to few pages: the answer is cached per combination
# (3 us per event of a browser-shaped batch without it, most of it host comparisons).
@functools.lru_cache(maxsize=65_536)
def referrer_and_source(
    raw_referrer: str, page_host: str, utm_source: str | None
) -> tuple[str, str]:
    """The referrer as stored (host/path) and the visit's source: utm_source (a known
    source's name when it names one), else the referrer's source; a referrer on the
    page's own host is internal navigation, no referrer at all."""
    referrer = normalize_referrer(raw_referrer) if raw_referrer else ""
    referrer_host = referrer.split("/", 1)[0]
    if referrer and is_self_referral(referrer_host, page_host):
        referrer = ""
    if utm_source is not None:
        return referrer, source_of_campaign(utm_source)
    return referrer, source_of_host(referrer_host) if referrer else ""

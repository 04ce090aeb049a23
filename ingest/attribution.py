"""Where a visit came from: the referrer's host named after a known source (Google,
Reddit, Hacker News, ...) from hitstream's table (referrer_sources.toml), a campaign's
utm_source, or nothing (direct). Ingest attributes each event once, as it encodes it."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from schemas.urls import normalize_referrer

TABLE = Path(__file__).with_name("referrer_sources.toml")
CATEGORIES = frozenset(
    {"search", "social", "email", "video", "news", "tech", "ai", "shopping", "other"}
)
# After a brand ("google.*"): one or two labels of at most three letters (de, co.uk).
_MAX_TLD_LABELS, _MAX_TLD_LENGTH = 2, 3


@dataclass(frozen=True)
class Source:
    name: str
    category: str


@dataclass(frozen=True)
class SourceTable:
    """Domains (exact, matched with their subdomains), brands (any top-level domain)
    and campaign names, each naming one source."""

    domains: Mapping[str, Source]
    brands: Mapping[str, Source]
    campaign_names: Mapping[str, Source]

    def of_host(self, host: str) -> Source | None:
        """The known source of a (lower-case, www-less) host: the longest domain it is
        or is under, else a brand followed only by a top-level domain."""
        labels = host.split(".")
        for start in range(len(labels) - 1):
            found = self.domains.get(".".join(labels[start:]))
            if found is not None:
                return found
        for index, label in enumerate(labels[:-1]):
            found = self.brands.get(label)
            rest = labels[index + 1 :]
            if (
                found is not None
                and len(rest) <= _MAX_TLD_LABELS
                and all(0 < len(part) <= _MAX_TLD_LENGTH for part in rest)
            ):
                return found
        return None


def load_table(path: Path = TABLE) -> SourceTable:
    """Read and check the table: every domain and campaign name names one source."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    domains: dict[str, Source] = {}
    brands: dict[str, Source] = {}
    names: dict[str, Source] = {}

    def claim(into: dict[str, Source], key: str, source: Source) -> None:
        if into.get(key, source) != source:
            raise ValueError(f"{path.name}: {key!r} names both {into[key].name} and {source.name}")
        into[key] = source

    for name, entry in raw.items():
        source = Source(name, entry.get("category", "other"))
        if source.category not in CATEGORIES:
            raise ValueError(f"{path.name}: {name}: unknown category {source.category!r}")
        claim(names, name.lower(), source)
        for alias in entry.get("aliases", ()):
            claim(names, alias.lower(), source)
        for domain in entry["domains"]:
            domain = domain.lower()
            if domain.endswith(".*"):
                claim(brands, domain[:-2], source)
            else:
                claim(domains, domain, source)
                claim(names, domain, source)
    return SourceTable(domains, brands, names)


SOURCES = load_table()


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

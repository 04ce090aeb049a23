"""hitstream's table of referrer sources (referrer_sources.toml beside this file): each
source's name, the domains and brands that name it, the utm_source spellings campaigns
use for it, and its category. Ingest names a visit's source with it
(ingest/attribution.py); reporting groups sources into channels by their category
(schemas/channels.py)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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

"""What an event's URLs become: the page's path, hostname and UTM tags, and the
referrer's host and path. Credentials, query strings (except the UTM tags) and
fragments are never kept: they can carry personal data."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from schemas.channels import CLICK_ID_PARAMS
from schemas.names import referrer_host, referrer_path

UTM_TAGS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Query parameters that name a visit's source when utm_source does not, in this order
# (Plausible reads `utm_source`, then `source`, then `ref`).
SOURCE_PARAMS = ("source", "ref")
MAX_TAG = 256

# Control characters (C0, DEL, C1), bidirectional overrides and isolates (they make a
# text display as something else), line separators, lone surrogates.
UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
UNSAFE_MESSAGE = "must not contain control characters, bidirectional overrides or lone surrogates"


# A host name (letters of any script, digits, '-', '_', '.') or an IP address literal.
HOST = re.compile(r"^(?:[\w-]+(?:\.[\w-]+)*\.?|[0-9A-Fa-f:.]+)$")


def normalize_path(raw: str) -> str:
    """Reduce a URL or path to its path: scheme, host (with any user:password), query
    string and fragment are dropped, also from scheme-less forms (`//user:pw@host/p`,
    `user:pw@host/p`), so no credential sent in a URL is stored."""
    candidate = raw.strip()
    if "://" in candidate:
        path = urlsplit(candidate).path
    elif candidate.startswith("//"):
        path = urlsplit("http:" + candidate).path
    else:
        path = candidate.split("#", 1)[0].split("?", 1)[0]
        first, slash, rest = path.partition("/")
        if "@" in first:  # an authority without its scheme: user[:password]@host
            path = slash + rest
    if not path.startswith("/"):
        path = "/" + path
    return path


@dataclass(frozen=True)
class Page:
    """What a page URL tells: its path, its host, the UTM tags of its query string, the
    source its `source` or `ref` parameter names, and the name of its ad-click parameter
    (`gclid` or `msclkid`, for visit:channel; the click's id itself is never kept)."""

    path: str
    hostname: str
    utm: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    click_id_param: str = ""


# Pages and referrers repeat (a site has few pages, visitors come from few places): each
# distinct URL is parsed once per process while it stays among the most recent.
URL_CACHE_SIZE = 65_536


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def parse_page(url: str) -> Page | None:
    """The page of an absolute http(s) URL, or None if it is not one (cached: the result
    is shared, never change it)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:  # an invalid IPv6 literal or port
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or not HOST.match(host):
        return None
    utm: dict[str, str] = {}
    named: dict[str, str] = {}
    clicks: set[str] = set()
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        tag = key.lower()
        if tag in CLICK_ID_PARAMS:
            clicks.add(tag)
        into = utm if tag in UTM_TAGS else named if tag in SOURCE_PARAMS else None
        if into is not None and tag not in into:
            cleaned = UNSAFE.sub("", value).strip()[:MAX_TAG]
            if cleaned:
                into[tag] = cleaned
    source = next((named[param] for param in SOURCE_PARAMS if param in named), "")
    click = next((param for param in CLICK_ID_PARAMS if param in clicks), "")
    return Page(normalize_path(parts.path or "/"), host.lower(), utm, source, click)


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def normalize_referrer(raw: str) -> str:
    """A referrer as Plausible stores it, `host/path`: a lower-case host without its
    leading `www.`, a path without its trailing `/`, no scheme, credentials, port, query
    or fragment; '' when it is not an http(s) URL (garbage is no referrer, not an error:
    browsers send what they have)."""
    page = parse_page(raw)
    if page is None:
        return ""
    return f"{referrer_host(page.hostname)}{referrer_path(page.path)}"

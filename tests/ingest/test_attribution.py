"""Referrer sources: the table's shape and size, host and campaign classification,
self-referrals (ingest/attribution.py, schemas/sources.py and its referrer_sources.toml)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.attribution import (
    bare_host,
    is_self_referral,
    referrer_and_source,
    source_of_campaign,
    source_of_host,
)
from ingest.encode import encode
from schemas.event import EventIn
from schemas.names import SOURCE_RENAMES
from schemas.sources import SOURCES, TABLE, load_table


def test_the_table_names_at_least_100_referrer_domains() -> None:
    assert len(SOURCES.domains) + len(SOURCES.brands) >= 100
    assert len({source.name for source in SOURCES.domains.values()}) >= 80


@pytest.mark.parametrize(
    ("host", "source"),
    [
        ("www.google.com", "Google"),
        ("google.de", "Google"),
        ("www.google.co.uk", "Google"),
        ("google.com.br", "Google"),
        ("images.google.fr", "Google"),
        ("mail.google.com", "Gmail"),  # the longer domain wins over the brand
        ("news.google.com", "Google News"),
        ("www.bing.com", "Bing"),
        ("duckduckgo.com", "DuckDuckGo"),
        ("l.facebook.com", "Facebook"),
        ("m.facebook.com", "Facebook"),
        ("t.co", "X (Twitter)"),
        ("x.com", "X (Twitter)"),
        ("twitter.com", "X (Twitter)"),
        ("www.linkedin.com", "LinkedIn"),
        ("old.reddit.com", "Reddit"),
        ("github.com", "GitHub"),
        ("someone.github.io", "GitHub"),
        ("news.ycombinator.com", "Hacker News"),
        ("WWW.YOUTUBE.COM", "Youtube"),
        ("chatgpt.com", "ChatGPT"),
        ("search.yahoo.co.jp", "Yahoo Japan"),
        ("mail.yahoo.com", "Yahoo Mail"),
        ("yahoo.com", "Yahoo!"),  # Plausible's names
        ("vk.com", "Vkontakte"),
        ("gemini.google.com", "Google Gemini"),
        ("copilot.microsoft.com", "Microsoft Copilot"),
        ("amazon.co.jp", "Amazon"),
        ("de.wikipedia.org", "Wikipedia"),
        ("google.com.", "Google"),  # a fully qualified name
    ],
)
def test_known_referrer_hosts_are_named(host: str, source: str) -> None:
    assert source_of_host(host) == source


@pytest.mark.parametrize(
    ("host", "source"),
    [
        ("www.example.org", "example.org"),  # unknown: the host, without www.
        ("blog.example.org", "blog.example.org"),
        ("google.example.org", "google.example.org"),  # a brand needs a top-level domain after it
        ("notgoogle.com", "notgoogle.com"),
        ("google.internal.corp.example", "google.internal.corp.example"),
        ("xn--80ak6aa92e.com", "xn--80ak6aa92e.com"),
        ("192.0.2.1", "192.0.2.1"),
    ],
)
def test_unknown_hosts_are_their_own_source(host: str, source: str) -> None:
    assert source_of_host(host) == source


@pytest.mark.parametrize(
    ("utm_source", "source"),
    [
        ("google", "Google"),
        ("Google", "Google"),
        ("fb", "Facebook"),
        ("twitter", "X (Twitter)"),
        ("news.ycombinator.com", "Hacker News"),
        ("www.reddit.com", "Reddit"),
        ("hn", "Hacker News"),
        ("VK", "Vkontakte"),  # a renamed source's former name
        ("yt", "Youtube"),
        ("Yahoo!", "Yahoo!"),
        ("newsletter", "Newsletter"),
        ("spring_sale_partner", "spring_sale_partner"),  # unknown: as the campaign wrote it
        ("Partner Blog", "Partner Blog"),
    ],
)
def test_campaign_sources_use_known_names(utm_source: str, source: str) -> None:
    assert source_of_campaign(utm_source) == source


def test_self_referrals() -> None:
    assert is_self_referral("localhost", "example.com")
    assert is_self_referral("www.example.com", "example.com")
    assert is_self_referral("example.com", "www.example.com")
    assert is_self_referral("EXAMPLE.com", "example.com")
    assert not is_self_referral("blog.example.com", "example.com")
    assert not is_self_referral("example.com", "")
    assert bare_host("www.Example.COM.") == "example.com"


def test_a_table_naming_one_domain_twice_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "sources.toml"
    table.write_text('[A]\ndomains = ["a.example"]\n[B]\ndomains = ["b.example", "a.example"]\n')
    with pytest.raises(ValueError, match=r"'a\.example' names both A and B"):
        load_table(table)


def test_a_table_with_an_unknown_category_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "sources.toml"
    table.write_text('[A]\ncategory = "misc"\ndomains = ["a.example"]\n')
    with pytest.raises(ValueError, match="unknown category"):
        load_table(table)


@pytest.mark.parametrize(
    ("fields", "referrer", "source"),
    [
        ({"referrer": "https://www.google.com/search?q=x"}, "google.com/search", "Google"),
        ({"referrer": "http://localhost:3000/dev"}, "", ""),  # a developer's machine
        ({"referrer": "not a url"}, "", ""),  # garbage: no referrer, direct
        ({"referrer": "javascript:alert(1)"}, "", ""),
        ({"referrer": "android-app://com.google.android.gm/"}, "", ""),
        ({"referrer": "https://[::1/"}, "", ""),  # an invalid IPv6 literal
        ({"referrer": "https://WWW.Shop.Example/cart"}, "", ""),  # the page's own host
        (
            {"referrer": "https://blog.shop.example/post"},
            "blog.shop.example/post",
            "blog.shop.example",
        ),
        ({}, "", ""),
        ({"utm_source": "fb"}, "", "Facebook"),  # a campaign without a referrer
        # Plausible's order: utm_source, then the page's source, then its ref parameter
        ({"url": "https://shop.example/?ref=news.ycombinator.com"}, "", "Hacker News"),
        ({"url": "https://shop.example/?ref=a&source=Partner"}, "", "Partner"),
        ({"url": "https://shop.example/?source=yt&utm_source=fb"}, "", "Facebook"),
        (
            {"url": "https://shop.example/?ref=blog", "referrer": "https://www.google.com/"},
            "google.com",
            "blog",
        ),
        (
            {"referrer": "https://duckduckgo.com/", "utm_source": "Partner"},
            "duckduckgo.com",
            "Partner",
        ),
    ],
)
def test_what_an_events_referrer_and_source_become(
    fields: dict[str, str], referrer: str, source: str
) -> None:
    body = {"site_id": "s", "event_type": "pageview", "url": "https://shop.example/", **fields}
    [encoded] = encode([EventIn.model_validate(body)], datetime.now(UTC))
    row = orjson.loads(encoded.row)
    assert (row["referrer"], row["source"]) == (referrer, source)


def test_the_table_ships_beside_its_code() -> None:
    assert TABLE.parent.name == "schemas" and TABLE.is_file()


def test_referrer_and_source_of_a_campaign_and_of_a_referrer() -> None:
    assert referrer_and_source("https://www.google.com/search?q=x", "shop.example", None) == (
        "google.com/search",
        "Google",
    )
    assert referrer_and_source("", "shop.example", "fb") == ("", "Facebook")
    assert referrer_and_source("https://shop.example/a", "shop.example", None) == ("", "")


def test_the_table_holds_the_renamed_sources_new_names_only() -> None:
    """schemas/names.py's SOURCE_RENAMES renames stored rows to the table's names."""
    names = {source.name for source in SOURCES.campaign_names.values()}
    assert set(SOURCE_RENAMES.values()) <= names
    assert not set(SOURCE_RENAMES) & names
    for old, new in SOURCE_RENAMES.items():
        assert source_of_campaign(old) == new

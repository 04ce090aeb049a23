"""Plausible's channel rules (schemas/channels.py) run by ClickHouse: one case or more
for each of the 19 rules, the order between them, the categories' sources."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from schemas.channels import (
    CHANNEL_CATEGORIES,
    CHANNELS,
    EXTRA_CATEGORIES,
    categories,
    channel_sql,
)
from schemas.sources import SOURCES

# (source, utm_medium, utm_source, utm_campaign, click-id parameter) -> channel. The
# source is what ingest stores: a known source's name, else the referrer's host or the
# campaign's utm_source as written.
CASES = [
    (("", "", "", "cross-network-summer", ""), "Cross-network"),
    (("Google", "cpc", "", "Cross-Network", "gclid"), "Cross-network"),  # rule 1 first
    (("Amazon", "cpc", "", "", ""), "Paid Shopping"),
    (("", "paid", "", "shop-sale", ""), "Paid Shopping"),
    (("Google", "", "", "", "gclid"), "Paid Search"),
    (("Bing", "", "", "", "msclkid"), "Paid Search"),
    (("Bing", "", "", "", "gclid"), "Organic Search"),  # Google's parameter, not Bing's
    (("DuckDuckGo", "", "", "", "gclid"), "Organic Search"),
    (("Google", "ppc", "", "", ""), "Paid Search"),
    (("Google", "CPC", "", "", ""), "Paid Search"),  # compared in lower case
    (("Google", "", "adwords", "", ""), "Paid Search"),
    (("Facebook", "paid_social", "", "", ""), "Paid Social"),
    (("Facebook", "", "fb-ads", "", ""), "Paid Social"),
    (("Youtube", "cpv", "", "", ""), "Paid Video"),
    (("Google", "display", "", "", "123identifier"), "Display"),
    (("", "banner", "", "", ""), "Display"),
    (("", "cpc", "", "", ""), "Paid Other"),
    (("", "retargeting", "", "", ""), "Paid Other"),
    (("", "", "", "shop", ""), "Organic Shopping"),
    (("", "", "", "eshop-deals", ""), "Organic Shopping"),
    (("", "", "", "workshop", ""), "Direct"),  # "shop" after a letter other than e
    (("Etsy", "", "", "", ""), "Organic Shopping"),
    (("Reddit", "", "", "", ""), "Organic Social"),
    (("X (Twitter)", "", "", "", ""), "Organic Social"),
    (("Hacker News", "", "", "", ""), "Organic Social"),  # EXTRA_CATEGORIES
    (("", "social media", "", "", ""), "Organic Social"),
    (("Vimeo", "", "", "", ""), "Organic Video"),
    (("", "video-promo", "", "", ""), "Organic Video"),
    (("ChatGPT", "", "", "", ""), "AI Assistants"),
    (("chat.mistral.ai", "", "", "", ""), "AI Assistants"),  # a host without a name
    (("DuckDuckGo", "", "", "", ""), "Organic Search"),
    (("Gmail", "", "", "", ""), "Email"),
    (("weekly-newsletter", "", "weekly-newsletter", "", ""), "Email"),
    (("", "e-mail", "", "", ""), "Email"),
    (("", "affiliate", "", "", ""), "Affiliates"),
    (("", "audio", "", "", ""), "Audio"),
    (("sms", "", "sms", "", ""), "SMS"),
    (("", "web-push", "", "", ""), "Mobile Push Notifications"),
    (("", "mobile-app", "", "", ""), "Mobile Push Notifications"),
    (("firebase", "", "firebase", "", ""), "Mobile Push Notifications"),
    (("", "referral", "", "", ""), "Referral"),
    (("Wikipedia", "", "", "", ""), "Referral"),
    (("blog.example.org", "", "", "", ""), "Referral"),
    (("", "", "", "", "gclid"), "Direct"),
    (("", "", "", "", ""), "Direct"),
]

RUN = """
SELECT {channel}
FROM (
    SELECT t.1 AS s, t.2 AS m, t.3 AS us, t.4 AS c, t.5 AS k
    FROM (SELECT arrayJoin({cases:Array(Tuple(String, String, String, String, String))}) AS t)
)
"""


def test_every_rule_as_plausible_orders_them(ch: Client) -> None:
    sql = RUN.replace("{channel}", channel_sql("s", "m", "us", "c", "k"))
    got = ch.query(sql, parameters={"cases": [inputs for inputs, _ in CASES]}).result_rows
    assert [(inputs, row[0]) for (inputs, _), row in zip(CASES, got, strict=True)] == CASES
    assert {channel for _, channel in CASES} == set(CHANNELS)  # each rule tried


def test_categories_come_from_the_source_table_and_hitstreams_list() -> None:
    found = categories()
    assert found["bing"] == found["bing.com"] == found["ddg"] == "search"  # name, host, alias
    assert found["x (twitter)"] == found["twitter"] == "social"
    assert found["hacker news"] == "social"  # the table says tech; the list says social
    assert "wikipedia" not in found  # category "other": no channel of its own
    assert set(found.values()) == CHANNEL_CATEGORIES


def test_the_extra_list_contradicts_the_table_nowhere() -> None:
    table = {
        key: source.category
        for key, source in [*SOURCES.campaign_names.items(), *SOURCES.domains.items()]
        if source.category in CHANNEL_CATEGORIES
    }
    for category, keys in EXTRA_CATEGORIES.items():
        assert len(set(keys)) == len(keys), category
        for key in keys:
            assert key == key.lower()
            assert table.get(key, category) == category, key


@pytest.mark.parametrize("name", CHANNELS)
def test_channel_names_are_plausibles(name: str) -> None:
    assert name in channel_sql("s", "m", "us", "c", "k")

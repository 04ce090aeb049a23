"""Browser, OS, device type and country: derived at ingest, the sources never stored."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import astuple

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from ingest.agents import describe
from ingest.geo import country
from schemas.entry import ClientColumns
from tests.helpers import D0, event, poll_stats

# Real agents (as browsers and crawlers send them) with what must be read from them.
CORPUS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ClientColumns("Chrome", "131.0", "Windows", "10", "desktop"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        ClientColumns("Edge", "131.0", "Windows", "10", "desktop"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.6 Safari/605.1.15",
        ClientColumns("Safari", "17.6", "Mac OS X", "10.15", "desktop"),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ClientColumns("Firefox", "133.0", "Linux", "", "desktop"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        ClientColumns("Mobile Safari", "17.4", "iOS", "17.4", "mobile"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        ClientColumns("Chrome Mobile", "131.0", "Android", "14", "mobile"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like "
        "Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        ClientColumns("Samsung Internet", "26.0", "Android", "14", "mobile"),
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        ClientColumns("Mobile Safari", "17.4", "iOS", "17.4", "tablet"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ClientColumns("Chrome", "131.0", "Android", "13", "tablet"),
    ),
    ("", ClientColumns()),
    ("   ", ClientColumns()),
    ("\x00\x01 garbage \u202e", ClientColumns()),
    ("x" * 100_000, ClientColumns()),
]


@pytest.mark.parametrize(("agent", "expected"), CORPUS, ids=range(len(CORPUS)))
def test_agents_are_read_as_browser_os_and_device(agent: str, expected: ClientColumns) -> None:
    assert describe(agent) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("8.8.8.8", "US"),
        ("1.0.16.1", "JP"),
        ("2001:4860:4860::8888", "US"),
        ("10.0.0.1", ""),
        ("192.168.1.20", ""),
        ("127.0.0.1", ""),
        ("::1", ""),
        ("fe80::1", ""),
        ("testclient", ""),
        ("", ""),
    ],
)
def test_countries_come_from_global_addresses_only(address: str, expected: str) -> None:
    assert country(address) == expected


def test_derived_columns_reach_the_events_table(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings], ch: Client
) -> None:
    client = make_client(make_settings(forwarded_allow_ips="*"))
    agent, expected = CORPUS[4]  # an iPhone
    headers = {"user-agent": agent, "x-forwarded-for": "1.0.16.1"}
    body = event("derived", "/", timestamp=f"{D0}T07:00:00Z")
    assert client.post("/event", json=body, headers=headers).status_code == 202
    poll_stats(client, lambda b: b["total_views"] == 1, site_id="derived", date=D0)
    [stored] = ch.query(
        "SELECT browser, browser_version, os, os_version, device, country FROM events"
        " WHERE site_id = 'derived'"
    ).result_rows
    assert stored == astuple(dataclasses.replace(expected, country="JP"))

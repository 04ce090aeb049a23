"""Browser, OS, device type and country: derived at ingest, the sources never stored."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from dataclasses import astuple

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from ingest import agents
from ingest.agents import describe
from ingest.geo import country
from schemas.entry import ClientColumns
from tests.helpers import D0, event, poll_stats

# Real agents (as browsers and crawlers send them) with what must be read from them, under
# Plausible's names (schemas/names.py).
CORPUS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ClientColumns("Chrome", "131.0", "Windows", "10", "Desktop"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        ClientColumns("Microsoft Edge", "131.0", "Windows", "10", "Desktop"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.6 Safari/605.1.15",
        ClientColumns("Safari", "17.6", "Mac", "10.15", "Desktop"),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ClientColumns("Firefox", "133.0", "GNU/Linux", "", "Desktop"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        ClientColumns("Safari", "17.4", "iOS", "17.4", "Mobile"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        ClientColumns("Chrome", "131.0", "Android", "14", "Mobile"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like "
        "Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        ClientColumns("Samsung Browser", "26.0", "Android", "14", "Mobile"),
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        ClientColumns("Safari", "17.4", "iPadOS", "17.4", "Tablet"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ClientColumns("Chrome", "131.0", "Android", "13", "Tablet"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        ClientColumns("Chrome", "124.0", "Mac", "10.15", "Desktop"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        ClientColumns("Chrome", "124.0", "iOS", "17.4", "Mobile"),
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        ClientColumns("Firefox", "125.0", "Ubuntu", "", "Desktop"),
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        ClientColumns("Firefox", "125.0", "Android", "14", "Mobile"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
        ClientColumns("Firefox", "125.0", "iOS", "17.4", "Mobile"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36 EdgA/124.0.2478.64",
        ClientColumns("Microsoft Edge", "124.0", "Android", "10", "Mobile"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
        ClientColumns("Opera", "109.0", "Windows", "10", "Desktop"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; VOG-L29) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36 OPR/81.1.4292.78446",
        ClientColumns("Opera", "81.1", "Android", "10", "Mobile"),
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        ClientColumns("Chrome", "124.0", "Chrome OS", "14541.0", "Desktop"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
        ClientColumns("Yandex Browser", "24.4", "Windows", "10", "Desktop"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
        ClientColumns("Internet Explorer", "11.0", "Windows", "10", "Desktop"),
    ),
    (  # an Android app's web view: a mobile app, no version
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36",
        ClientColumns("Mobile App", "", "Android", "14", "Mobile"),
    ),
    (  # Facebook's in-app browser
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.38.108;FBBV/577006880;"
        "FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        ClientColumns("Mobile App", "", "iOS", "17.4", "Mobile"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Mobile/15E148 Instagram 330.0.3.12.235 (iPhone15,2; iOS 17_4; en_US; en; "
        "scale=3.00; 1179x2556; 605574386)",
        ClientColumns("Mobile App", "", "iOS", "17.4", "Mobile"),
    ),
    ("Mozilla/5.0 Umami/v20.11.0", ClientColumns()),  # @umami/node's default agent
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
        "SELECT browser, browser_version, os, os_version, device, country, region,"
        " region_name, city_name FROM events WHERE site_id = 'derived'"
    ).result_rows
    assert stored == astuple(dataclasses.replace(expected, country="JP"))


def test_only_an_ingest_process_builds_the_agent_parser(
    make_client: Callable[..., TestClient], settings: Settings
) -> None:
    # Importing every room (what `hitstream consume` loads) does not build it: it holds
    # about 24 MB a consumer has no use for.
    probe = "import hitstream.cli, ingest.agents as a; print(a.parser.cache_info().currsize)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]
    # An ingest process builds it at startup, not on its first event.
    agents.parser.cache_clear()
    make_client(settings, frozenset({Role.INGEST}))
    assert agents.parser.cache_info().currsize == 1

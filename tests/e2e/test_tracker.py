"""hitstream's tracking script (GET /js/hitstream.js) in headless Chromium, on pages of
their own origins, against a real `hitstream serve` in key mode with a public site: what
it sends, what is refused, and what the query API then counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from foundation.testing import HitstreamProcess
from tests.helpers import (
    ADMIN,
    DESKTOP_CHROME,
    Sent,
    api_query,
    counted,
    new_site,
    pump_until,
    write_pages,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hitstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HitstreamProcess]:
    tmp = tmp_path_factory.mktemp("tracker")
    env = {
        "HITSTREAM_DATA_DIR": str(tmp / "data"),
        "HITSTREAM_INGEST_AUTH": "key",
        "HITSTREAM_ADMIN_TOKEN": ADMIN,
    }
    server = HitstreamProcess("serve", env, tmp / "log")
    server.start()
    yield server
    assert server.stop() == 0, server.log()


def test_page_views_navigations_events_and_clicks_are_counted(
    hitstream: HitstreamProcess, web_port: tuple[int, Path], browser: Browser
) -> None:
    port, root = web_port
    origin = f"http://shop.test:{port}"
    site = new_site(hitstream, origin)
    write_pages(root, hitstream, site, 'data-automated="true" data-auto="outbound,downloads"')
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    context.route("https://elsewhere.test/**", lambda route: route.fulfill(body="elsewhere"))
    page = context.new_page()
    sent = Sent(page, hitstream.base_url + "/api/event")

    page.goto(f"{origin}/index.html?utm_campaign=launch", referer="https://news.ycombinator.com/")
    pump_until(page, lambda: len(sent.requests) >= 2, "the page view and the early event")
    page.click("#signup")
    page.click("#file")
    pump_until(page, lambda: len(sent.requests) >= 4, "the signup and the download")
    page.goto(f"{origin}/index.html")
    pump_until(page, lambda: len(sent.requests) >= 6, "the second page view")
    page.click("#out")
    pump_until(page, lambda: len(sent.requests) >= 7, "the outbound click")
    page.goto(f"{origin}/spa.html")
    page.click("#a")
    page.click("#b")
    page.go_back()  # popstate: back on /app/a
    pump_until(page, lambda: len(sent.requests) >= 11, "four page views of the app")
    context.close()

    assert sent.names() == [
        "pageview", "Early", "Signup", "File Download", "pageview", "Early",
        "Outbound Link: Click",
        "pageview", "pageview", "pageview", "pageview",
    ]  # fmt: skip
    # Beacons, as text/plain (a simple request: no preflight).
    assert {r.resource_type for r in sent.requests} == {"ping"}
    assert all(r.headers["content-type"].startswith("text/plain") for r in sent.requests)
    first = sent.requests[0].post_data_json
    assert first["d"] == site and first["r"] == "https://news.ycombinator.com/"
    assert first["u"] == f"{origin}/index.html?utm_campaign=launch"

    counted(
        hitstream, site, "event:name",
        {"pageview": 6, "Early": 2, "Signup": 1, "File Download": 1, "Outbound Link: Click": 1},
    )  # fmt: skip
    pages = api_query(hitstream, site, metrics=["pageviews"], dimensions=["event:page"])
    assert sorted((d[0], m[0]) for d, m in pages) == [
        ("/app/a", 2), ("/app/b", 1), ("/index.html", 2), ("/spa.html", 1),
    ]  # fmt: skip
    props = api_query(
        hitstream, site, metrics=["events"], dimensions=["event:props:url"],
        filters=[["is_not", "event:props:url", ["(not set)"]]],
    )  # fmt: skip
    assert sorted(d[0] for d, _ in props) == [
        f"{origin}/files/report.pdf", "https://elsewhere.test/pricing",
    ]  # fmt: skip
    plans = api_query(
        hitstream, site, metrics=["events"], dimensions=["event:props:plan"],
        filters=[["is", "event:name", ["Signup"]]],
    )  # fmt: skip
    assert plans == [(["pro"], [1])]
    campaign = api_query(hitstream, site, metrics=["visitors"], dimensions=["visit:utm_campaign"])
    assert (["launch"], [1]) in campaign
    referrers = api_query(hitstream, site, metrics=["visits"], dimensions=["visit:referrer"])
    assert any(d == ["news.ycombinator.com"] for d, _ in referrers), referrers


def test_hash_routes_and_the_fetch_fallback(
    hitstream: HitstreamProcess, web_port: tuple[int, Path], browser: Browser
) -> None:
    port, root = web_port
    origin = f"http://hash.test:{port}"
    site = new_site(hitstream, origin)
    write_pages(root, hitstream, site, 'data-automated="true" data-hash="true"')
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    # A browser without beacons: the script falls back to fetch with keepalive.
    context.add_init_script("Object.defineProperty(navigator, 'sendBeacon', {value: undefined})")
    page = context.new_page()
    sent = Sent(page, hitstream.base_url + "/api/event")
    page.goto(f"{origin}/hash.html")
    page.click("#settings")
    pump_until(page, lambda: len(sent.requests) >= 2, "two page views")
    context.close()
    assert {r.resource_type for r in sent.requests} == {"fetch"}
    counted(hitstream, site, "event:page", {"/hash.html": 1, "/hash.html#/settings": 1})


def test_other_origins_localhost_and_automated_browsers_are_not_counted(
    hitstream: HitstreamProcess, web_port: tuple[int, Path], browser: Browser
) -> None:
    port, root = web_port
    origin = f"http://mine.test:{port}"
    site = new_site(hitstream, origin)
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = context.new_page()
    sent = Sent(page, hitstream.base_url + "/api/event")
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if "/api/event" in r.url else None)

    # Automated browsers are not tracked unless the page asks: nothing is sent.
    write_pages(root, hitstream, site, "")
    page.goto(f"{origin}/spa.html")
    page.wait_for_function("typeof window.hitstream === 'function' && !window.hitstream.q")
    # Nor localhost, even when automation is allowed.
    write_pages(root, hitstream, site, 'data-automated="true"')
    page.goto(f"http://localhost:{port}/spa.html")
    page.wait_for_function("typeof window.hitstream === 'function' && !window.hitstream.q")
    assert sent.requests == []

    # Another origin naming this site: sent, refused, not counted.
    page.goto(f"http://intruder.test:{port}/hash.html")
    pump_until(page, lambda: len(answers) >= 1, "the refusal")
    assert answers == [401]  # no key, and no site allows that origin
    # The site's own origin: counted (after the refused one: the stream is in order).
    page.goto(f"{origin}/index.html")
    pump_until(page, lambda: len(answers) >= 3, "the page view and the early event")
    assert answers[1:] == [202, 202]
    # localhost when the page asks for it (refused here: no site allows that origin).
    write_pages(root, hitstream, site, 'data-automated="true" data-local="true"')
    page.goto(f"http://localhost:{port}/hash.html")
    pump_until(page, lambda: len(answers) >= 4, "the localhost page view")
    context.close()
    assert sent.requests[-1].post_data_json["u"] == f"http://localhost:{port}/hash.html"
    counted(hitstream, site, "event:page", {"/index.html": 2})

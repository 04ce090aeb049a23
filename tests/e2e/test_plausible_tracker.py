"""Plausible's official tracker (npm `@plausible-analytics/tracker`, vendored in
tests/assets) in headless Chromium, pointed at a real `hitstream serve`: what it really
sends is recorded, answered as Plausible answers, stored, and counted (its engagement
events stored, never counted)."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Request, Response, sync_playwright

from foundation.testing import HitstreamProcess, wait_stats
from tests.helpers import CHROMIUM, DESKTOP_CHROME, free_port, pump_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TRACKER = Path(__file__).parents[1] / "assets" / "plausible-tracker"
DOMAIN = "tracker.test"

# The tracked website: a tall page that loads the tracker as its docs say. The tracker
# ignores browsers driven by automation unless window.__plausible is set (a test's
# own opt-in), and localhost unless captureOnLocalhost.
PAGE = """<!doctype html>
<html><head><title>Tracked</title>
<script>window.__plausible = true</script>
<script type="module">
  import { init, track } from "/plausible.js"
  init({ domain: "%(domain)s", endpoint: "%(endpoint)s", captureOnLocalhost: true })
  window.track = track
  window.trackerReady = true
</script></head>
<body><div style="height: 6000px">tall page</div><p id="end">end</p></body></html>
"""

# The events table as JSON lines, read in a child process after `serve` stopped.
DUMP = """
import sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn='chdb://' + sys.argv[1], database='hitstream')
sys.stdout.buffer.write(c.raw_query(
    "SELECT event_type, path, referrer, source, props, engagement_ms, scroll_depth,"
    " toString(revenue_amount) AS revenue, revenue_currency, browser, device"
    " FROM events WHERE site_id = '%s' ORDER BY ts, event_type FORMAT JSONEachRow"))
"""


@pytest.fixture
def website(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static site on its own origin: `/` (the page) and the vendored tracker."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "plausible.js").write_bytes((TRACKER / "plausible.js").read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_the_official_tracker_is_accepted_stored_and_counted(
    tmp_path: Path, website: tuple[str, Path]
) -> None:
    site_url, root = website
    engagement: dict[str, Any] = {}
    data = tmp_path / "data"
    server = HitstreamProcess("serve", {"HITSTREAM_DATA_DIR": str(data)}, tmp_path / "log")
    server.start()
    sent: list[dict[str, Any]] = []
    answers: list[tuple[int, str, str]] = []
    try:
        endpoint = server.base_url + "/api/event"
        (root / "index.html").write_text(PAGE % {"domain": DOMAIN, "endpoint": endpoint})

        def record(request: Request) -> None:
            if request.url == endpoint and request.method == "POST":
                sent.append(
                    {"content-type": request.headers.get("content-type"), **request.post_data_json}
                )

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            context = browser.new_context(user_agent=DESKTOP_CHROME)
            page = context.new_page()
            page.on("request", record)

            def answered(response: Response) -> None:
                if response.url == endpoint:
                    answers.append(
                        (
                            response.status,
                            response.text(),
                            response.headers.get("access-control-allow-origin", ""),
                        )
                    )

            page.on("response", answered)
            page.goto(
                site_url + "/?utm_source=hn&utm_campaign=launch",
                referer="https://news.ycombinator.com/",
            )
            page.wait_for_function("window.trackerReady === true")
            pump_until(page, lambda: len(answers) >= 1, "the page view answered")
            page.evaluate(
                "track('Signup', {props: {plan: 'pro'}, revenue: {amount: 9.5, currency: 'EUR'}})"
            )
            page.locator("#end").scroll_into_view_if_needed()
            pump_until(page, lambda: page.evaluate("window.scrollY") > 0, "the page scrolled")
            # A single-page app's navigation: the tracker closes the first page with an
            # engagement event, then counts the next page.
            page.evaluate("history.pushState({}, '', '/second')")
            pump_until(page, lambda: len(answers) >= 4, "four requests answered")
            browser.close()
        names = [body["n"] for body in sent]
        assert names == ["pageview", "Signup", "engagement", "pageview"], sent
        assert all(body["content-type"] == "text/plain" for body in sent)
        assert all(answer[:2] == (202, "ok") for answer in answers), answers
        assert all(answer[2] for answer in answers), "CORS lets the tracker read the answer"
        first, signup, engagement, _ = sent
        assert {"n", "u", "d", "r", "v"} <= set(first) and first["d"] == DOMAIN
        assert signup["$"] == {"amount": 9.5, "currency": "EUR"} and signup["p"] == {"plan": "pro"}
        assert {"e", "sd"} <= set(engagement) and 0 < engagement["sd"] <= 100
        with httpx.Client(base_url=server.base_url) as http_client:
            views = wait_stats(http_client.get, lambda b: b["total_views"] == 3, site_id=DOMAIN)
        assert views["unique_visitors"] == 1
    finally:
        assert server.stop() == 0, server.log()
    rows = [
        json.loads(line)
        for line in subprocess.run(
            [sys.executable, "-c", DUMP % DOMAIN, str(data / "clickhouse")],
            capture_output=True,
            check=True,
        ).stdout.splitlines()
    ]
    # Stored in the order received: beacons sent a moment apart may arrive either way.
    order = [("pageview", "/"), ("Signup", "/"), ("engagement", "/"), ("pageview", "/second")]
    rows.sort(key=lambda r: order.index((r["event_type"], r["path"])))
    assert [(r["event_type"], r["path"]) for r in rows] == order
    landing, purchase, engaged, _ = rows
    assert (landing["referrer"], landing["source"]) == ("news.ycombinator.com", "Hacker News")
    assert (purchase["revenue"], purchase["revenue_currency"]) == ("9.5", "EUR")
    # stored as sent: what the tracker measured
    assert (engaged["scroll_depth"], engaged["engagement_ms"]) == (
        engagement["sd"],
        engagement["e"],
    )
    assert (landing["browser"], landing["device"]) == ("Chrome", "Desktop")

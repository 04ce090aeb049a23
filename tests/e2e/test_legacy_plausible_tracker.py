"""The legacy npm tracker `plausible-tracker` 0.3.9 (vendored in tests/assets) in headless
Chromium, pointed at a real `hitstream serve`: its props, sent as a JSON string, and its
automatic outbound-link clicks are accepted, stored and counted with their props
(ingest/plausible.py)."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Request, Response, sync_playwright

from foundation.testing import HitstreamProcess, wait_for
from tests.helpers import CHROMIUM, DESKTOP_CHROME, free_port, pump_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TRACKER = Path(__file__).parents[1] / "assets" / "plausible-tracker-legacy"
DOMAIN = "legacy.test"
OUTBOUND = "Outbound Link: Click"

# The tracked page, loading the package's ES module build as a bundler would. Its
# imports name `./lib/tracker` and `./request` without `.js`, which a bundler resolves
# and a browser does not: the import map does it here. The tracker ignores localhost
# (127.0.0.1 too) unless trackLocalhost. The link goes to another host (`localhost`, not
# `127.0.0.1`): an outbound link, whose click the tracker reports, then follows.
PAGE = """<!doctype html>
<html><head><title>Legacy</title>
<script type="importmap">{"imports": {
  "/legacy/lib/tracker": "/legacy/lib/tracker.js",
  "/legacy/lib/request": "/legacy/lib/request.js"}}</script>
<script type="module">
  import Plausible from "/legacy/index.js"
  const tracker = Plausible({domain: "%(domain)s", apiHost: "%(api)s", trackLocalhost: true})
  tracker.trackPageview()
  tracker.enableAutoOutboundTracking()
  window.trackEvent = tracker.trackEvent
  window.trackerReady = true
</script></head>
<body><a id="out" href="%(outbound)s">elsewhere</a></body></html>
"""


@pytest.fixture
def website(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A static site: `/index.html` (the page), `/elsewhere.html` and the vendored tracker
    under `/legacy/`."""
    root = tmp_path / "site"
    shutil.copytree(TRACKER, root / "legacy")
    (root / "elsewhere.html").write_text("<!doctype html><title>Elsewhere</title>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], root
    server.shutdown()
    server.server_close()


def breakdown(base_url: str, name: str, prop: str) -> list[Any]:
    """The events named `name` by `event:props:<prop>`, through the query API."""
    query = {
        "site_id": DOMAIN,
        "metrics": ["events"],
        "date_range": "day",
        "dimensions": [f"event:props:{prop}"],
        "filters": [["is", "event:name", [name]]],
    }
    answer = httpx.post(base_url + "/api/v2/query", json=query, timeout=5)
    assert answer.status_code == 200, answer.text
    results: list[Any] = answer.json()["results"]
    return results


def test_the_legacy_trackers_props_and_outbound_clicks_are_counted(
    tmp_path: Path, website: tuple[int, Path]
) -> None:
    port, root = website
    outbound = f"http://localhost:{port}/elsewhere.html"
    server = HitstreamProcess(
        "serve", {"HITSTREAM_DATA_DIR": str(tmp_path / "data")}, tmp_path / "log"
    )
    server.start()
    sent: list[dict[str, Any]] = []
    answers: list[tuple[int, str]] = []
    try:
        endpoint = server.base_url + "/api/event"
        page_text = PAGE % {"domain": DOMAIN, "api": server.base_url, "outbound": outbound}
        (root / "index.html").write_text(page_text)

        def record(request: Request) -> None:
            if request.url == endpoint and request.method == "POST":
                sent.append(
                    {"content-type": request.headers.get("content-type"), **request.post_data_json}
                )

        def answered(response: Response) -> None:
            if response.url == endpoint:
                answers.append((response.status, response.text()))

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_context(user_agent=DESKTOP_CHROME).new_page()
            page.on("request", record)
            page.on("response", answered)
            page.goto(f"http://127.0.0.1:{port}/index.html")
            page.wait_for_function("window.trackerReady === true")
            pump_until(page, lambda: len(answers) >= 1, "the page view answered")
            page.evaluate("trackEvent('Signup', {props: {plan: 'pro', seats: 3, trial: true}})")
            pump_until(page, lambda: len(answers) >= 2, "the event answered")
            # The tracker reports the click, then follows the link 150 ms later (which may
            # cut its answer short: the counts below are what proves it arrived).
            page.click("#out")
            page.wait_for_url(outbound)
            browser.close()
        assert [body["n"] for body in sent] == ["pageview", "Signup", OUTBOUND], sent
        assert answers[:2] == [(202, "ok"), (202, "ok")], answers
        view, signup, click = sent
        assert all(body["content-type"] == "text/plain" for body in sent)
        # What makes this tracker different: props as a JSON string, w and h.
        assert "p" not in view and isinstance(view["w"], int) and view["h"] == 0
        assert json.loads(signup["p"]) == {"plan": "pro", "seats": 3, "trial": True}
        assert json.loads(click["p"]) == {"url": outbound}
        clicks = wait_for(
            lambda: breakdown(server.base_url, OUTBOUND, "url") or None,
            timeout=30,
            what="the outbound click counted",
        )
        assert clicks == [{"dimensions": [outbound], "metrics": [1]}]
        for prop, value in (("plan", "pro"), ("seats", "3"), ("trial", "true")):
            assert breakdown(server.base_url, "Signup", prop) == [
                {"dimensions": [value], "metrics": [1]}
            ]
    finally:
        assert server.stop() == 0, server.log()

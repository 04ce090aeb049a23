"""Umami's own clients against a real `hitstream serve` (open mode): `@umami/node` 0.4.0
run by `node`, and Umami's tracker (npm `umami` 2.10.0) in headless Chromium, both
vendored in tests/assets; what they send to /api/send is answered and counted."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Request

from foundation.testing import HitstreamProcess
from tests.helpers import ADMIN, AUTH, DESKTOP_CHROME, counted, pump_until

pytestmark = pytest.mark.e2e

ASSETS = Path(__file__).parents[1] / "assets"
# Debian's nodejs (make test installs it) runs @umami/node as its users run it.
NODE = shutil.which("node") or "node"

# @umami/node as its README shows it: a custom event with data (no url), and a page
# view given as an object; each answer printed as a JSON line.
NODE_SCRIPT = """
const { Umami } = require(process.argv[2]);
const umami = new Umami({ websiteId: process.argv[3], hostUrl: process.argv[4] });
(async () => {
  for (const sent of [
    umami.track('signup', { plan: 'pro', seats: 3 }),
    umami.track({ url: '/pricing', hostname: 'shop.test', title: 'Pricing' }),
  ]) {
    const answer = await sent;
    console.log(JSON.stringify({ status: answer.status, body: await answer.json() }));
  }
})();
"""

PAGE = """<!doctype html><html><head><title>Tracked</title>
<script defer src="/umami.js" data-website-id="%(website)s" data-host-url="%(host)s"></script>
</head><body><p>page</p></body></html>"""


@pytest.fixture(scope="module")
def hitstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HitstreamProcess]:
    tmp = tmp_path_factory.mktemp("umami")
    env = {"HITSTREAM_DATA_DIR": str(tmp / "data"), "HITSTREAM_ADMIN_TOKEN": ADMIN}
    server = HitstreamProcess("serve", env, tmp / "log")
    server.start()
    yield server
    assert server.stop() == 0, server.log()


def new_site(server: HitstreamProcess, name: str) -> dict[str, Any]:
    with httpx.Client(base_url=server.base_url) as client:
        made = client.post("/api/sites", json={"name": name}, headers=AUTH)
    assert made.status_code == 201, made.text
    return dict(made.json())


def test_umami_node_sends_a_custom_event_that_is_counted(
    hitstream: HitstreamProcess, tmp_path: Path
) -> None:
    site = new_site(hitstream, "Node")
    script = tmp_path / "send.js"
    script.write_text(NODE_SCRIPT)
    client = str(ASSETS / "umami-node" / "index.js")
    run = subprocess.run(
        [NODE, str(script), client, site["website_id"], hitstream.base_url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [a["status"] for a in answers] == [200, 200], answers
    assert all(set(a["body"]) == {"cache", "sessionId", "visitId"} for a in answers)
    counted(hitstream, site["site_id"], "event:name", {"signup": 1, "pageview": 1})
    counted(hitstream, site["site_id"], "event:page", {"/": 1, "/pricing": 1})


@pytest.mark.browser
def test_umamis_tracker_sends_page_views_that_are_counted(
    hitstream: HitstreamProcess, web_port: tuple[int, Path], browser: Browser
) -> None:
    port, root = web_port
    site = new_site(hitstream, "Browser")
    (root / "umami.js").write_bytes((ASSETS / "umami-tracker" / "script.js").read_bytes())
    (root / "umami.html").write_text(
        PAGE % {"website": site["website_id"], "host": hitstream.base_url}
    )
    endpoint = hitstream.base_url + "/api/send"
    sent: list[Request] = []
    answers: list[tuple[int, str]] = []
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = context.new_page()
    page.on(
        "request", lambda r: sent.append(r) if r.url == endpoint and r.method == "POST" else None
    )
    page.on(
        "response",
        lambda r: (
            answers.append((r.status, r.text()))
            if r.url == endpoint and r.request.method == "POST"
            else None
        ),
    )
    page.goto(
        f"http://shop.test:{port}/umami.html?utm_source=hn", referer="https://news.ycombinator.com/"
    )
    pump_until(page, lambda: len(answers) >= 1, "the page view answered")
    page.evaluate("history.pushState({}, '', '/second')")  # a single-page app's navigation
    pump_until(page, lambda: len(answers) >= 2, "the second page view answered")
    cache_header = sent[1].all_headers().get("x-umami-cache")
    context.close()
    assert [status for status, _ in answers] == [200, 200], answers
    first, second = (request.post_data_json for request in sent)
    assert (first["type"], first["payload"]["url"]) == ("event", "/umami.html?utm_source=hn")
    assert second["payload"]["url"] == "/second"
    # The v2 tracker keeps the first answer's text and sends it back (after a preflight).
    assert cache_header == answers[0][1]
    counted(hitstream, site["site_id"], "event:page", {"/umami.html": 1, "/second": 1})
    counted(hitstream, site["site_id"], "visit:source", {"Hacker News": 2})

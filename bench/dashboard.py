"""The dashboard's load time in headless Chromium, logged in as the admin, for a 30-day
range at 1280x900: from navigation to the first screen filled (headline, chart and the
panels in view: the others start once it is filled), then to every panel filled once the
page is scrolled through."""

from __future__ import annotations

import statistics
from typing import Any

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
LOADS = 5


def load_ms(base: str, admin_token: str, site_id: str, loads: int = LOADS) -> dict[str, Any]:
    """Median and slowest of `loads` page loads (the first one fetches the assets too)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/login")
            page.fill("#token", admin_token)
            page.click("form button[type=submit]")
            page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
            first, every = [], []
            for _ in range(loads):
                page.goto(f"{base}/dashboard?site={site_id}&period=30d&interval=day")
                page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
                first.append(
                    int(page.evaluate("() => Number(document.body.dataset.firstScreenMs)"))
                )
                for section in page.locator("[data-panel]").all():
                    section.scroll_into_view_if_needed()
                page.wait_for_selector(
                    "[data-panel]:not([data-loaded])", state="detached", timeout=60_000
                )
                page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
                every.append(int(page.evaluate("() => Number(document.body.dataset.readyMs)")))
        finally:
            browser.close()
    return {
        "first_screen_median": statistics.median(first),
        "first_screen_max": max(first),
        "every_panel_median": statistics.median(every),
        "first_screen": first,
        "every_panel": every,
    }

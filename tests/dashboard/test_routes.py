"""The page shells: the event names Python owns reach the page, every asset URL carries
the content version, and the scripts the page loads satisfy its Content-Security-Policy."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboard.routes import (
    ASSETS_PATH,
    HEADERS,
    STATIC_DIR,
    STATIC_PATH,
    VERSION,
    _page,
    content_version,
    routes,
)
from schemas.event import ENGAGEMENT, PAGEVIEWS


class Shell(HTMLParser):
    """The tags of a page, with their attributes, and any text inside a script."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1][0] == "script":
            self.script_text += data.strip()

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def shell(view: str = "stats", mode: str = "admin") -> Shell:
    return Shell(bytes(_page("Stats", view, mode=mode, site="s").body).decode())


def test_the_page_carries_exactly_the_event_names_python_owns() -> None:
    shells = [("stats", "admin"), ("stats", "share"), ("sites", "admin"), ("login", "admin")]
    for view, mode in shells:
        (body,) = shell(view, mode).all("body")
        assert json.loads(body["data-pageviews"] or "") == list(PAGEVIEWS)
        assert body["data-engagement"] == ENGAGEMENT


def test_every_asset_url_carries_the_content_version() -> None:
    page = shell()
    urls = [a["src"] for a in page.all("script")] + [a["href"] for a in page.all("link")]
    assets = [url for url in urls if url and url.startswith(STATIC_PATH)]
    assert len(assets) == 4
    assert all(url.startswith(f"{ASSETS_PATH}/") and "?" not in url for url in assets)
    assert ASSETS_PATH.removesuffix(VERSION) == f"{STATIC_PATH}/"
    assert content_version(STATIC_DIR) == VERSION


def test_the_scripts_are_same_origin_files_as_the_policy_asks() -> None:
    """`script-src 'self'`: no inline script, no other origin; main.js is a module."""
    page = shell()
    assert "script-src 'self'" in HEADERS["Content-Security-Policy"]
    scripts = page.all("script")
    assert page.script_text == ""
    assert all((s["src"] or "").startswith(f"{ASSETS_PATH}/") for s in scripts)
    assert {"type": "module", "src": f"{ASSETS_PATH}/js/main.js"} in scripts


def test_the_content_version_changes_with_any_file_its_name_or_a_new_one(tmp_path: Path) -> None:
    (tmp_path / "js" / "stats").mkdir(parents=True)
    (tmp_path / "js" / "main.js").write_text("import './stats/view.js';\n")
    (tmp_path / "js" / "stats" / "view.js").write_text("export const a = 1;\n")
    seen = {content_version(tmp_path)}
    (tmp_path / "js" / "stats" / "view.js").write_text("export const a = 2;\n")  # an import
    seen.add(content_version(tmp_path))
    (tmp_path / "js" / "stats" / "view.js").rename(tmp_path / "js" / "stats" / "chart.js")
    seen.add(content_version(tmp_path))
    (tmp_path / "js" / "format.js").write_text("")
    seen.add(content_version(tmp_path))
    assert len(seen) == 4
    assert content_version(tmp_path) == content_version(tmp_path)


def test_every_asset_is_served_under_this_version_only() -> None:
    client = TestClient(Starlette(routes=routes()))
    files = [p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert "js/main.js" in files and "js/stats/view.js" in files
    for name in files:
        served = client.get(f"{ASSETS_PATH}/{name}")
        assert served.status_code == 200, name
        if name.endswith(".js"):  # a module needs a JavaScript MIME type
            assert "javascript" in served.headers["content-type"], name
    assert client.get(f"{STATIC_PATH}/000000000000/js/main.js").status_code == 404
    assert client.get(f"{STATIC_PATH}/js/main.js").status_code == 404

"""The dashboard's scripts: ES modules that import each other by relative paths (so every
one carries the content version), keep no copy of a rule Python owns, stay small, and
all ship in the package."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
from playwright.sync_api import Route, sync_playwright
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboard.routes import ASSETS_PATH, EVENT_NAMES, STATIC_DIR, _page, routes
from schemas.event import ENGAGEMENT, PAGEVIEWS
from tests.helpers import CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = STATIC_DIR / "js"
MODULES = sorted(SCRIPTS.rglob("*.js"))
IMPORT = re.compile(r"""^import\s.*?\sfrom\s'([^']+)';$|^import\s'([^']+)';$""", re.M)
LONGEST_FUNCTION = 60


def imports(module: Path) -> list[str]:
    return [a or b for a, b in IMPORT.findall(module.read_text())]


def test_modules_import_only_each_other_by_relative_paths() -> None:
    """A relative import resolves under the page's versioned path: never a stale module."""
    for module in MODULES:
        for specifier in imports(module):
            assert specifier.startswith(("./", "../")), (module, specifier)
            target = (module.parent / specifier).resolve()
            assert target.is_file() and target.is_relative_to(SCRIPTS), (module, specifier)
        assert "import(" not in module.read_text(), module


def test_every_module_is_reached_from_main() -> None:
    reached, todo = set(), [SCRIPTS / "main.js"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += [(module.parent / s).resolve() for s in imports(module)]
    assert reached == set(MODULES)


def test_no_script_keeps_a_copy_of_the_event_names() -> None:
    names = "|".join(re.escape(name) for name in (*PAGEVIEWS, ENGAGEMENT))
    literal = re.compile(rf"""(['"`])(?:{names})\1""")
    for module in MODULES:
        assert not literal.search(module.read_text()), module


def test_the_scripts_read_the_attributes_the_page_carries() -> None:
    source = (SCRIPTS / "page.js").read_text()
    for attribute in EVENT_NAMES:
        assert f"body.dataset.{attribute}" in source, attribute


def test_no_function_is_longer_than_sixty_lines() -> None:
    """Top-level functions start at the margin and end at a `}` there."""
    long = []
    for module in MODULES:
        start = None
        for number, line in enumerate(module.read_text().splitlines(), 1):
            if re.match(r"(export )?function ", line):
                start = number
            elif line == "}" and start is not None:
                if number - start + 1 > LONGEST_FUNCTION:
                    long.append(f"{module.name}:{start} ({number - start + 1} lines)")
                start = None
    assert not long


def test_every_asset_ships_in_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["dashboard"]
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            name = path.relative_to(STATIC_DIR.parent).as_posix()
            assert any(fnmatch.fnmatch(name, p) and name.count("/") == p.count("/")
                       for p in patterns), name  # fmt: skip


@pytest.mark.e2e
@pytest.mark.browser
def test_in_chromium_the_modules_load_under_the_policy_and_read_the_names() -> None:
    """Every module loads from the page's versioned path under its Content-Security-Policy
    (nothing refused, nothing thrown), and page.js holds the names the page carries."""
    server = TestClient(Starlette(routes=routes()))
    origin = "http://dashboard.test"
    page_html = _page("Log in", "login")  # the login view: every module loads, none acts

    def serve(route: Route) -> None:
        path = route.request.url.removeprefix(origin)
        if path == "/":
            route.fulfill(status=200, headers=dict(page_html.headers), body=page_html.body)
            return
        answer = server.get(path)
        route.fulfill(status=answer.status_code, headers=dict(answer.headers), body=answer.content)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        fetched: list[str] = []
        page.on("requestfinished", lambda r: fetched.append(r.url.removeprefix(origin)))
        page.route(f"{origin}/**", serve)
        page.goto(origin + "/")
        page.wait_for_load_state("load")
        names = page.evaluate("(src) => import(src).then((m) => m.NOT_CUSTOM_EVENTS)",
                              f"{ASSETS_PATH}/js/page.js")  # fmt: skip
        browser.close()
    assert names == [*PAGEVIEWS, ENGAGEMENT]
    assert problems == []
    modules = {f"{ASSETS_PATH}/{m.relative_to(STATIC_DIR).as_posix()}" for m in MODULES}
    assert modules <= set(fetched)

"""The dashboard: login, logout, and the pages that show a site's stats, the sites and
the queue.

Each page is a small server-rendered HTML shell; the ES modules under `static/js/`
(`main.js` first) fill it from the public APIs only (/api/v2/query, /api/sites,
/api/queue), with the session cookie (the admin) or a shared link's token (one site,
read-only). No build step: plain JavaScript modules served as they are and the vendored
uPlot, so the package runs with no internet and no Node.
"""

from __future__ import annotations

import hashlib
import json
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from foundation.http import APIError, read_body
from schemas.event import ENGAGEMENT, PAGEVIEWS
from sites.access import SHARE_ROUTE, AccessState, is_admin, matches, same_origin_write
from sites.sessions import COOKIE

STATIC_PATH = "/dashboard/static"
STATIC_DIR = Path(__file__).parent / "static"
# A login form holds one token: anything longer is not one.
MAX_LOGIN_BODY = 4096


def _template(name: str) -> Template:
    return Template(resources.files("dashboard").joinpath(f"templates/{name}").read_text())


def content_version(directory: Path) -> str:
    """A short hash of every file under `directory`, names and contents."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


PAGE = _template("page.html")
LOGIN = _template("login.html")
# Changes with any shipped asset, so browsers fetch new ones after an upgrade. It is a
# directory of the assets' path, not a query string: the modules import each other by
# relative paths, which then carry it too (a page never runs a stale module).
VERSION = content_version(STATIC_DIR)
ASSETS_PATH = f"{STATIC_PATH}/{VERSION}"
# The event names the scripts need, from their owner (schemas/event.py), as attributes
# of the page's body: page views and engagement are not custom events.
EVENT_NAMES = {"pageviews": escape(json.dumps(list(PAGEVIEWS))), "engagement": escape(ENGAGEMENT)}

# Pages run only their own scripts and talk only to their own origin; no page may be
# framed (clickjacking) and no address leaks to other origins through Referer
# (`same-origin`, not `no-referrer`, which would blank the Origin of the pages' own
# writes, and those are checked: sites/access.py).
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

ADMIN_NAV = """<nav aria-label="Dashboard">
  <a href="/dashboard" data-nav="stats">Stats</a>
  <a href="/dashboard/sites" data-nav="sites">Sites</a>
  <a href="/dashboard/queue" data-nav="queue">Queue</a>
  <form method="post" action="/logout"><button type="submit">Log out</button></form>
</nav>"""
SHARE_NAV = '<p class="shared">Shared link, read-only</p>'


def _page(
    title: str,
    view: str,
    body: str = "",
    mode: str = "admin",
    site: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    html = PAGE.substitute(
        title=escape(title),
        static=ASSETS_PATH,
        view=view,
        mode=mode,
        site=escape(site),
        home="/dashboard" if mode == "admin" else "#",
        nav=ADMIN_NAV if mode == "admin" and view != "login" else SHARE_NAV if site else "",
        body=body,
        **EVENT_NAMES,
    )
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})


def _login_page(
    message: str = "", status: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    shown = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    body = LOGIN.substitute(message=shown)
    return _page("Log in", "login", body, status=status, headers=headers)


async def login_form(request: Request[AccessState]) -> Response:
    if await is_admin(request):
        return RedirectResponse("/dashboard", status_code=303)
    if not request.state["admin_token"]:
        return _login_page("Logging in is disabled: set HITSTREAM_ADMIN_TOKEN.", 403)
    return _login_page()


async def login(request: Request[AccessState]) -> Response:
    """Trade the admin token for a session cookie (HttpOnly, SameSite=Strict)."""
    token = request.state["admin_token"]
    if not token:
        return _login_page("Logging in is disabled: set HITSTREAM_ADMIN_TOKEN.", 403)
    if not same_origin_write(request):
        return _login_page("This form was sent from another site.", 403)
    given = (await _form(request)).get("token", "").strip()
    verified = matches(given, token)
    try:
        await request.state["auth_attempts"].settle(request, verified, "token")
    except APIError as refused:  # too many failed logins from this address
        retry = refused.headers.get("Retry-After", "")
        message = f"Too many failed logins from this address: try again in {retry} s."
        return _login_page(message, refused.status_code, refused.headers)
    if not verified:
        return _login_page("That is not the admin token.", 401)
    sessions = request.state["sessions"]
    secret = await sessions.open(token)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        max_age=sessions.ttl_s,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


async def _form(request: Request[Any]) -> dict[str, str]:
    """A small urlencoded form (the login), refused past MAX_LOGIN_BODY."""
    body = await read_body(request, MAX_LOGIN_BODY)
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items()}


async def logout(request: Request[AccessState]) -> Response:
    """End the session for good (not only this browser's cookie)."""
    if same_origin_write(request):
        await request.state["sessions"].end(request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _admin_page(title: str, view: str) -> Any:
    async def page(request: Request[AccessState]) -> Response:
        if not await is_admin(request):
            return RedirectResponse("/login", status_code=303)
        return _page(title, view)

    return page


async def shared(request: Request[AccessState]) -> Response:
    """A shared link: the site's stats, read with the token after `#` in the link."""
    site_id = request.path_params["site_id"]
    return _page("Shared stats", "stats", mode="share", site=site_id)


def routes() -> list[BaseRoute]:
    """The dashboard's pages and assets."""
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/dashboard", _admin_page("Stats", "stats"), methods=["GET"]),
        Route("/dashboard/sites", _admin_page("Sites", "sites"), methods=["GET"]),
        Route("/dashboard/queue", _admin_page("Queue", "queue"), methods=["GET"]),
        Route(SHARE_ROUTE, shared, methods=["GET"]),
        Mount(ASSETS_PATH, StaticFiles(directory=STATIC_DIR), name="dashboard-static"),
    ]

"""Who may read and administer: the admin token (or a dashboard session opened with
it), and a site's keys and share tokens for its stats."""

from __future__ import annotations

import hmac
from typing import TypedDict, TypeVar
from urllib.parse import urlsplit

from starlette.requests import Request

from hitstream.http import APIError
from hitstream.settings import Settings
from sites.cache import SiteCache
from sites.sessions import COOKIE, Sessions

KEY_HEADER = "x-api-key"

ADMIN_DISABLED = (
    "admin routes are disabled: set HITSTREAM_ADMIN_TOKEN to enable them "
    "(hitstream serve generates one and prints it when it does)"
)


class AccessState(TypedDict):
    """What access checks read from the app's lifespan state."""

    settings: Settings
    admin_token: str | None
    site_cache: SiteCache
    sessions: Sessions


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


AccessT = TypeVar("AccessT", bound=AccessState)


# Sec-Fetch-Site of a request made by this origin's own pages, or by the user (the
# address bar, a bookmark); `same-site` is a sibling subdomain's page.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})


def _bearer(request: Request[AccessT]) -> str | None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


async def is_admin(request: Request[AccessT]) -> bool:
    """True with `Authorization: Bearer <admin token>`, or with a dashboard session
    cookie on a read or on a write sent by a page of this origin."""
    token = request.state["admin_token"]
    if not token:
        return False
    given = _bearer(request)
    if given is not None:
        # Bytes, not str: compare_digest refuses non-ASCII strings (a hostile header).
        return hmac.compare_digest(given.encode(), token.encode())
    secret = request.cookies.get(COOKIE)
    if not secret or not same_origin_write(request):
        return False
    return await request.state["sessions"].valid(secret, token)


def _this_origin(origin: str, request: Request[AccessT]) -> bool:
    return urlsplit(origin).netloc == request.headers.get("host")


def same_origin_write(request: Request[AccessT]) -> bool:
    """A cookie carries no proof of which page sent a write: SameSite=Strict keeps other
    sites' pages from sending it, and this keeps sibling origins of the same site
    (another subdomain) out. Browsers send Origin with every POST, PATCH and DELETE."""
    if request.method in SAFE_METHODS:
        return True
    origin = request.headers.get("origin")
    return origin is not None and _this_origin(origin, request)


def _foreign_page(request: Request[AccessT]) -> dict[str, str] | None:
    """What shows that another origin's page sent this read, if anything: browsers send
    Sec-Fetch-Site with every request, and Origin with cross-origin ones (a GET from an
    `<img>` carries no Origin, hence Sec-Fetch-Site)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in OWN_FETCH_SITES:
        return {"field": "sec-fetch-site", "message": f"{site}: sent by another origin's page"}
    origin = request.headers.get("origin")
    if origin is not None and not _this_origin(origin, request):
        return {"field": "origin", "message": "sent by another origin's page"}
    return None


async def require_admin(request: Request[AccessT], costly: bool = False) -> None:
    """403 when no admin token is configured, 401 without the right one. `costly`: a
    read with heavy side effects (an export), which a session cookie may start only
    from this origin's pages or the address bar (403), as a write; a bearer token,
    which browsers never attach by themselves, is not asked."""
    if not request.state["admin_token"]:
        raise APIError(403, ADMIN_DISABLED, [{"field": "authorization", "message": "disabled"}])
    if not await is_admin(request):
        raise APIError(
            401,
            "admin token required",
            [{"field": "authorization", "message": "send Authorization: Bearer <admin token>"}],
            headers={"WWW-Authenticate": "Bearer"},
        )
    if costly and _bearer(request) is None and (foreign := _foreign_page(request)):
        raise APIError(403, "a page of another origin cannot start this", [foreign])


async def require_reader(request: Request[AccessT], site_id: str) -> None:
    """With HITSTREAM_INGEST_AUTH=key, a site's data is read with a key or share token of
    that site (in x-api-key, or as `Authorization: Bearer` as Plausible's clients send
    it) or as the admin (401 without either, 403 with another site's key)."""
    if request.state["settings"].ingest_auth != "key" or await is_admin(request):
        return
    api_key = request.headers.get(KEY_HEADER) or _bearer(request)
    key = await request.state["site_cache"].key(api_key) if api_key else None
    if key is None:
        raise APIError(
            401,
            "an API key of this site (or the admin token) is required",
            [{"field": KEY_HEADER, "message": "missing, invalid, expired or revoked"}],
            headers={"WWW-Authenticate": "Bearer"},
        )
    if key.site_id != site_id:
        raise APIError(
            403,
            "this key belongs to another site",
            [{"field": "site_id", "message": f"the key reads {key.site_id} only"}],
        )

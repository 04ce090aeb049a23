"""Who may read and administer: the admin token (or a dashboard session opened with
it), and a site's keys and share tokens for its stats."""

from __future__ import annotations

import hmac
from typing import Any, Protocol, TypedDict, TypeVar
from urllib.parse import quote, urlsplit

from starlette.requests import Request

from foundation.http import APIError
from foundation.settings import Settings
from sites.cache import SiteCache
from sites.model import claim_of
from sites.sessions import COOKIE, Sessions

KEY_HEADER = "x-api-key"

ADMIN_DISABLED = (
    "admin routes are disabled: set HITSTREAM_ADMIN_TOKEN to enable them "
    "(hitstream serve generates one and prints it when it does)"
)

# Where a shared link opens the dashboard (the dashboard serves the route).
SHARE_ROUTE = "/share/{site_id}"


def share_path(site_id: str, token: str) -> str:
    """A shared link's path. The token goes after `#`, which browsers send to no server
    and put in no Referer."""
    return SHARE_ROUTE.format(site_id=quote(site_id, safe="")) + f"#auth={token}"


class Attempts(Protocol):
    """Failed authentications, charged to the client's address (ingest/auth.py's
    FailedAttempts, wired by the app)."""

    async def settle(
        self, request: Request[Any], verified: bool, credential: str, keyed: bool = False
    ) -> None:
        """429 while the address is over its failures, whatever `verified` (the
        credential is right, or a revoked or expired key's own), except for a right key
        (`keyed`); a failure (`verified` False) is charged and logged, naming
        `credential`, never its value."""


class AccessState(TypedDict):
    """What access checks read from the app's lifespan state."""

    settings: Settings
    admin_token: str | None
    site_cache: SiteCache
    sessions: Sessions
    auth_attempts: Attempts


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}
AUTHORIZATION = "authorization"


AccessT = TypeVar("AccessT", bound=AccessState)

# Sec-Fetch-Site of a request made by this origin's own pages, or by the user (the
# address bar, a bookmark); `same-site` is a sibling subdomain's page.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})


def bearer(request: Request[Any]) -> str | None:
    """The token of `Authorization: Bearer <token>`, if the request sends one."""
    scheme, _, given = request.headers.get(AUTHORIZATION, "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def matches(given: str, token: str | None) -> bool:
    """A constant-time comparison; bytes, not str: compare_digest refuses non-ASCII
    strings (a hostile header)."""
    return token is not None and hmac.compare_digest(given.encode(), token.encode())


async def is_admin(request: Request[AccessT]) -> bool:
    """True with `Authorization: Bearer <admin token>`, or with a dashboard session
    cookie on a read or on a write sent by a page of this origin.

    A bearer token is settled as an attempt (a wrong one charged to the address, and
    the right one refused while the address is over its failures); one shaped like a
    site's key is left to the key check of require_reader, which settles it."""
    token = request.state["admin_token"]
    if not token:
        return False
    given = bearer(request)
    if given is not None:
        verified = matches(given, token)
        if verified or _admin_settles(request, given):
            await request.state["auth_attempts"].settle(request, verified, AUTHORIZATION)
        return verified
    # A cookie's secret is 256 random bits, and a stale one (after a logout) is an
    # honest browser's: cookies are not charged.
    secret = request.cookies.get(COOKIE)
    if not secret or not same_origin_write(request):
        return False
    return await request.state["sessions"].valid(secret, token)


def _admin_settles(request: Request[AccessT], given: str) -> bool:
    """Whether is_admin settles this wrong bearer token: one shaped like a site's key (a
    share token sent as Plausible's clients send it) is left to the key check."""
    return bool(request.state["admin_token"]) and claim_of(given) is None


def same_origin_write(request: Request[AccessT]) -> bool:
    """A cookie carries no proof of which page sent a write: SameSite=Strict keeps other
    sites' pages from sending it, and this keeps sibling origins of the same site
    (another subdomain, or this host on another scheme or port) out. Browsers send
    Origin with every POST, PATCH and DELETE."""
    if request.method in SAFE_METHODS:
        return True
    origin = request.headers.get("origin")
    return origin is not None and _origin_of(origin) == own_origin(request)


def own_origin(request: Request[Any]) -> tuple[str, str, int] | None:
    """This server's origin as the browser sees it: the request's scheme (behind a
    trusted proxy, its X-Forwarded-Proto: HITSTREAM_FORWARDED_ALLOW_IPS) and the Host
    header (a proxy passes it through)."""
    host = request.headers.get("host")
    return _origin_of(f"{request.url.scheme}://{host}") if host else None


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the scheme's default port made explicit; None for an
    opaque origin (`null`) or one that does not parse."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port or DEFAULT_PORTS[scheme]


def _foreign_page(request: Request[AccessT]) -> dict[str, str] | None:
    """What shows that another origin's page sent this read, if anything: browsers send
    Sec-Fetch-Site with every request, and Origin with cross-origin ones (a GET from an
    `<img>` carries no Origin, hence Sec-Fetch-Site)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in OWN_FETCH_SITES:
        return {"field": "sec-fetch-site", "message": f"{site}: sent by another origin's page"}
    origin = request.headers.get("origin")
    if origin is not None and _origin_of(origin) != own_origin(request):
        return {"field": "origin", "message": "sent by another origin's page"}
    return None


async def require_admin(request: Request[AccessT], costly: bool = False) -> None:
    """403 when no admin token is configured, 401 without the right one (429 after too
    many wrong ones from the address). `costly`: a read with heavy side effects (an
    export), which a session cookie may start only from this origin's pages or the
    address bar (403), as a write; a bearer token, which browsers never attach by
    themselves, is not asked."""
    if not request.state["admin_token"]:
        raise APIError(403, ADMIN_DISABLED, [{"field": AUTHORIZATION, "message": "disabled"}])
    if not await is_admin(request):
        await _charge_unsettled(request)
        raise _admin_required()
    if costly and bearer(request) is None and (foreign := _foreign_page(request)):
        raise APIError(403, "a page of another origin cannot start this", [foreign])


async def _charge_unsettled(request: Request[AccessT]) -> None:
    """A refused admin route: a key-shaped bearer token, which is_admin left to a key
    check that this route does not make, is charged here as the failure it is."""
    given = bearer(request)
    if given is not None and not _admin_settles(request, given):
        await request.state["auth_attempts"].settle(request, False, AUTHORIZATION)


def _admin_required() -> APIError:
    return APIError(
        401,
        "admin token required",
        [{"field": AUTHORIZATION, "message": "send Authorization: Bearer <admin token>"}],
        headers={"WWW-Authenticate": "Bearer"},
    )


async def require_metrics_reader(request: Request[AccessT]) -> None:
    """GET /metrics in key mode: the metrics token (HITSTREAM_METRICS_TOKEN, for
    scrapers) or the admin's credentials (401, 403 when neither is configured). Open
    mode keeps it open, as the rest of the laptop mode."""
    settings = request.state["settings"]
    if settings.ingest_auth != "key":
        return
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    given = bearer(request)
    if metrics_token is not None and given is not None and matches(given, metrics_token):
        await request.state["auth_attempts"].settle(request, True, AUTHORIZATION)
        return
    if metrics_token is None and not request.state["admin_token"]:
        raise APIError(
            403,
            "metrics are disabled in key mode: set HITSTREAM_METRICS_TOKEN (or "
            "HITSTREAM_ADMIN_TOKEN) and scrape with Authorization: Bearer <token>",
            [{"field": AUTHORIZATION, "message": "disabled"}],
        )
    if not await is_admin(request):
        await _charge_unsettled(request)
        raise APIError(
            401,
            "the metrics token or the admin token is required",
            [{"field": AUTHORIZATION, "message": "send Authorization: Bearer <metrics token>"}],
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_reader(request: Request[AccessT], site_id: str) -> None:
    """With HITSTREAM_INGEST_AUTH=key, a site's data is read with a key or share token of
    that site (in x-api-key, or as `Authorization: Bearer` as Plausible's clients send
    it) or as the admin (401 without either, 403 with another site's key)."""
    if request.state["settings"].ingest_auth != "key" or await is_admin(request):
        return
    header_key = request.headers.get(KEY_HEADER)
    api_key = header_key or bearer(request)
    key, genuine = (
        await request.state["site_cache"].check_key(api_key) if api_key else (None, False)
    )
    if api_key and (header_key or not _admin_settles(request, api_key)):
        # A revoked or expired key's holder (a stale shared link) is no guesser.
        await request.state["auth_attempts"].settle(request, genuine, KEY_HEADER, keyed=True)
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

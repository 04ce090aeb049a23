"""Who may read and administer: the admin token, and a site's keys for its stats."""

from __future__ import annotations

import hmac
from typing import TypedDict, TypeVar

from starlette.requests import Request

from hitstream.http import APIError
from hitstream.settings import Settings
from sites.cache import SiteCache

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


AccessT = TypeVar("AccessT", bound=AccessState)


def is_admin(request: Request[AccessT]) -> bool:
    """True when the request carries `Authorization: Bearer <admin token>`."""
    token = request.state["admin_token"]
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII strings (a hostile header).
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), (token or "").encode())
    )


def require_admin(request: Request[AccessT]) -> None:
    """403 when no admin token is configured, 401 without the right one."""
    if not request.state["admin_token"]:
        raise APIError(403, ADMIN_DISABLED, [{"field": "authorization", "message": "disabled"}])
    if not is_admin(request):
        raise APIError(
            401,
            "admin token required",
            [{"field": "authorization", "message": "send Authorization: Bearer <admin token>"}],
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_reader(request: Request[AccessT], site_id: str) -> None:
    """With HITSTREAM_INGEST_AUTH=key, a site's data is read with a key of that site (in
    x-api-key, or as `Authorization: Bearer` as Plausible's clients send it) or the admin
    token (401 without either, 403 with another site's key)."""
    if request.state["settings"].ingest_auth != "key" or is_admin(request):
        return
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    api_key = request.headers.get(KEY_HEADER) or (
        bearer.strip() if scheme.lower() == "bearer" else None
    )
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

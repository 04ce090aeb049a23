"""The admin token: who may administer sites and see the queue (shared by every room)."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from hitstream.http import APIError

ADMIN_DISABLED = (
    "admin routes are disabled: set HITSTREAM_ADMIN_TOKEN to enable them "
    "(hitstream serve generates one and prints it at start)"
)


def is_admin(request: Request) -> bool:
    """True when the request carries `Authorization: Bearer <admin token>`."""
    token: str | None = request.state.admin_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII strings (a hostile header).
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), (token or "").encode())
    )


def require_admin(request: Request) -> None:
    """403 when no admin token is configured, 401 without the right one."""
    if not request.state.admin_token:
        raise APIError(403, ADMIN_DISABLED, [{"field": "authorization", "message": "disabled"}])
    if not is_admin(request):
        raise APIError(
            401,
            "admin token required",
            [{"field": "authorization", "message": "send Authorization: Bearer <admin token>"}],
            headers={"WWW-Authenticate": "Bearer"},
        )

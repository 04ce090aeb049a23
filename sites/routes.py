"""Site administration: create sites, list them, rotate and revoke keys (admin token)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from foundation.http import APIError, JSONResponse, read_model
from schemas.sites import GoalCreate, SiteCreate, SiteUpdate
from sites.access import AccessState, require_admin, share_path
from sites.goals import Goal, GoalError, make_goal
from sites.model import ApiKey, Site, new_site_id, new_website_id
from sites.registry import Registry


class AdminState(AccessState):
    """What the admin routes read from the app's lifespan state."""

    registry: Registry


AdminRequest = Request[AdminState]


async def _require_admin(request: AdminRequest) -> Registry:
    await require_admin(request)
    return request.state["registry"]


def _site_json(site: Site, keys: list[ApiKey] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "site_id": site.site_id,
        "name": site.name,
        "public": site.public,
        "allowed_origins": list(site.allowed_origins),
        "domains": list(site.domains),
        "timezone": site.timezone,
        "public_rate_limit_per_s": site.public_rate_limit_per_s,
        "accept_server_events": site.accept_server_events,
        "website_id": site.website_id,
        "created_at": site.created_at.isoformat(),
    }
    if keys is not None:
        out["keys"] = [
            {
                "key_id": k.key_id,
                "created_at": k.created_at.isoformat(),
                "expires_at": k.expires_at.isoformat() if k.expires_at else None,
                "revoked": k.revoked,
                "active": k.active(),
                "read_only": k.read_only,
            }
            for k in keys
        ]
    return out


async def _known_site(registry: Registry, site_id: str) -> tuple[Site, list[ApiKey]]:
    found = await registry.site(site_id)
    if found is None:
        raise APIError(404, "no such site", [{"field": "site_id", "message": site_id[:200]}])
    return found


async def _domains_free(registry: Registry, site_id: str, domains: list[str]) -> None:
    """409 when another site already answers to one of these domains."""
    held = await registry.holder(site_id, domains=domains) if domains else None
    if held is not None:
        other, domain = held
        raise APIError(
            409,
            f"domain {domain} belongs to site {other.site_id}",
            [{"field": "domains", "message": f"{domain} is taken"}],
        )


async def _website_free(registry: Registry, site_id: str, website_id: str | None) -> None:
    """409 when another site already has this website_id (Umami's `website`)."""
    held = await registry.holder(site_id, website_id=website_id) if website_id else None
    if held is not None:
        raise APIError(
            409,
            f"website_id {website_id} belongs to site {held[0].site_id}",
            [{"field": "website_id", "message": f"{website_id} is taken"}],
        )


async def create_site(request: AdminRequest) -> Response:
    """Create a site and its first key; the key is in this answer only."""
    registry = await _require_admin(request)
    body = await read_model(request, SiteCreate, request.state["settings"].max_body_bytes)
    site_id = new_site_id(body.name)
    await _domains_free(registry, site_id, body.domains)
    await _website_free(registry, site_id, body.website_id)
    site = Site(
        site_id,
        body.name,
        body.public,
        tuple(body.allowed_origins),
        domains=tuple(body.domains),
        timezone=body.timezone,
        public_rate_limit_per_s=body.public_rate_limit_per_s,
        accept_server_events=body.accept_server_events,
        website_id=body.website_id or new_website_id(),
    )
    key, plaintext = await registry.create_site(site)
    return JSONResponse(
        {**_site_json(site), "api_key": plaintext, "key_id": key.key_id}, status_code=201
    )


async def list_sites(request: AdminRequest) -> Response:
    registry = await _require_admin(request)
    return JSONResponse(
        {"sites": [_site_json(site, keys) for site, keys in await registry.sites()]}
    )


async def update_site(request: AdminRequest) -> Response:
    registry = await _require_admin(request)
    site, keys = await _known_site(registry, request.path_params["site_id"])
    body = await read_model(request, SiteUpdate, request.state["settings"].max_body_bytes)
    changes = {k: v for k, v in body.model_dump(exclude_none=True).items()}
    if "allowed_origins" in changes:
        changes["allowed_origins"] = tuple(changes["allowed_origins"])
    if "domains" in changes:
        await _domains_free(registry, site.site_id, changes["domains"])
        changes["domains"] = tuple(changes["domains"])
    await _website_free(registry, site.site_id, changes.get("website_id"))
    updated = dataclasses.replace(site, **changes)
    await registry.update_site(updated)
    return JSONResponse(_site_json(updated, keys))


async def rotate_key(request: AdminRequest) -> Response:
    """A new key; the previous ones keep working for HITSTREAM_KEY_GRACE_S."""
    registry = await _require_admin(request)
    site, keys = await _known_site(registry, request.path_params["site_id"])
    settings = request.state["settings"]
    key, plaintext = await registry.rotate(site.site_id, keys, settings.key_grace_s)
    until = datetime.now(UTC) + timedelta(seconds=settings.key_grace_s)
    return JSONResponse(
        {
            "site_id": site.site_id,
            "key_id": key.key_id,
            "api_key": plaintext,
            "created_at": key.created_at.isoformat(),
            "previous_keys_expire_at": until.isoformat(),
        },
        status_code=201,
    )


async def share_site(request: AdminRequest) -> Response:
    """A share token: a read-only key for a shared link, shown in this answer only."""
    registry = await _require_admin(request)
    site, _ = await _known_site(registry, request.path_params["site_id"])
    key, plaintext = await registry.share(site.site_id)
    return JSONResponse(
        {
            "site_id": site.site_id,
            "key_id": key.key_id,
            "token": plaintext,
            "path": share_path(site.site_id, plaintext),
            "created_at": key.created_at.isoformat(),
        },
        status_code=201,
    )


async def revoke_key(request: AdminRequest) -> Response:
    """Revoke one key or share token at once."""
    registry = await _require_admin(request)
    _, keys = await _known_site(registry, request.path_params["site_id"])
    key_id = request.path_params["key_id"]
    key = next((k for k in keys if k.key_id == key_id), None)
    if key is None:
        raise APIError(
            404, "no such key for this site", [{"field": "key_id", "message": key_id[:100]}]
        )
    await registry.revoke(key)
    return JSONResponse({"site_id": key.site_id, "key_id": key.key_id, "revoked": True})


def goal_json(goal: Goal) -> dict[str, Any]:
    """A goal as the admin routes and Plausible's Sites API v1 show it."""
    return {
        "id": goal.goal_id,
        "display_name": goal.display_name,
        "goal_type": goal.goal_type,
        "event_name": goal.event_name or None,
        "page_path": goal.page_path or None,
        "currency": goal.currency or None,
    }


def goal_refused(exc: GoalError) -> APIError:
    return APIError(
        400, f"{exc.field}: {exc.message}", [{"field": exc.field, "message": exc.message}]
    )


async def list_goals(request: AdminRequest) -> Response:
    """The site's goals, oldest first."""
    registry = await _require_admin(request)
    site, _ = await _known_site(registry, request.path_params["site_id"])
    return JSONResponse(
        {
            "site_id": site.site_id,
            "goals": [goal_json(g) for g in await registry.goals(site.site_id)],
        }
    )


async def put_goal(request: AdminRequest) -> Response:
    """Find or create a goal (Plausible's rule): 200 with the goal already there, as it
    is; 201 with a new one."""
    registry = await _require_admin(request)
    site, _ = await _known_site(registry, request.path_params["site_id"])
    body = await read_model(request, GoalCreate, request.state["settings"].max_body_bytes)
    if (body.event_name is None) == (body.page_path is None):
        raise APIError(
            400,
            "send exactly one of event_name (an event goal) and page_path (a page goal)",
            [{"field": "event_name", "message": "exactly one of event_name and page_path"}],
        )
    try:
        wanted = make_goal(site.site_id, **body.model_dump())
        goal, found = await registry.add_goal(wanted)
    except GoalError as exc:
        raise goal_refused(exc) from None
    return JSONResponse(
        {"site_id": site.site_id, **goal_json(goal)}, status_code=200 if found else 201
    )


async def delete_goal(request: AdminRequest) -> Response:
    registry = await _require_admin(request)
    site, _ = await _known_site(registry, request.path_params["site_id"])
    raw = request.path_params["goal_id"]
    goal = await registry.goal(site.site_id, raw)
    if goal is None:
        raise APIError(
            404, "no such goal for this site", [{"field": "goal_id", "message": raw[:40]}]
        )
    await registry.delete_goal(goal)
    return JSONResponse({"site_id": site.site_id, "id": goal.goal_id, "deleted": True})


def routes() -> list[BaseRoute]:
    """Admin routes under /api/sites."""
    return [
        Route("/api/sites", create_site, methods=["POST"]),
        Route("/api/sites", list_sites, methods=["GET"]),
        Route("/api/sites/{site_id}", update_site, methods=["PATCH"]),
        Route("/api/sites/{site_id}/keys", rotate_key, methods=["POST"]),
        Route("/api/sites/{site_id}/keys/{key_id}", revoke_key, methods=["DELETE"]),
        Route("/api/sites/{site_id}/shares", share_site, methods=["POST"]),
        Route("/api/sites/{site_id}/goals", list_goals, methods=["GET"]),
        Route("/api/sites/{site_id}/goals", put_goal, methods=["PUT"]),
        Route("/api/sites/{site_id}/goals/{goal_id}", delete_goal, methods=["DELETE"]),
    ]

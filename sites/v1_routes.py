"""Plausible's Sites API v1 (admin token as Bearer): sites and goals in its shapes and
messages, over the same registry as /api/sites (PA extra/.../external_sites_controller.ex,
PD docs/sites-api.md; docs/http-api.md, Sites API v1)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import ValidationError
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from foundation import jsonbody
from foundation.http import APIError, JSONResponse, read_body
from schemas.sites import SiteCreate
from sites.access import AUTHORIZATION, bearer, require_admin
from sites.goals import EVENT, PAGE, Goal, GoalError, make_goal
from sites.model import ApiKey, Site, new_site_id, new_website_id
from sites.registry import Registry
from sites.routes import AdminRequest, goal_json

MISSING_KEY = "Missing API key. Please use a valid Plausible API key as a Bearer Token."
INVALID_KEY = (
    "Invalid API key. Please make sure you're using a valid API key with access to the "
    "resource you've requested."
)
NO_SITE = "Site could not be found"
NO_GOAL = "Goal could not be found"
DEFAULT_TIMEZONE = "Etc/UTC"  # Plausible's default for a site made through the API
PAGE_LIMIT, MAX_PAGE_LIMIT = 100, 1000

T = TypeVar("T")


def _refused(status: int, message: str, field: str = "") -> APIError:
    """Plausible's `{"error": message}` (with hitstream's details beside it)."""
    return APIError(status, message, [{"field": field, "message": message}] if field else ())


async def _admin(request: AdminRequest) -> Registry:
    """The admin token, answered in Plausible's words when it is missing or wrong."""
    try:
        await require_admin(request)
    except APIError as exc:
        if exc.status_code not in (401, 403):
            raise  # 429: too many wrong tokens from this address
        message = MISSING_KEY if bearer(request) is None else INVALID_KEY
        raise APIError(
            401, message, [{"field": AUTHORIZATION, "message": exc.error}], exc.headers
        ) from None
    return request.state["registry"]


async def _params(request: AdminRequest) -> dict[str, Any]:
    """The query string, overlaid by a JSON object or form body (Plausible takes both)."""
    params: dict[str, Any] = dict(request.query_params)
    body = await read_body(request, request.state["settings"].max_body_bytes)
    if not body.strip():
        return params
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return {**params, **dict(parse_qsl(body.decode("utf-8", "replace")))}
    try:
        parsed = jsonbody.parse(body)
    except jsonbody.MalformedJSON as exc:
        raise APIError(
            400, "malformed JSON body", [{"field": "body", "message": str(exc)}]
        ) from None
    if not isinstance(parsed, dict):
        raise _refused(400, "the body must be a JSON object", "body")
    return {**params, **parsed}


def _text(params: dict[str, Any], name: str) -> str | None:
    """A parameter as text: None when absent or blank (a number is taken as its digits)."""
    value = params.get(name)
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip() if isinstance(value, str | int) else ""
    return text or None


def domain_of(site: Site) -> str:
    """What Plausible calls the site: its first domain, else its id."""
    return site.domains[0] if site.domains else site.site_id


def _site_json(site: Site) -> dict[str, Any]:
    return {
        "domain": domain_of(site),
        "timezone": site.timezone,
        "custom_properties": [],
        "site_id": site.site_id,
        "website_id": site.website_id,
    }


def _clean_domain(value: str) -> str:
    """Plausible's clean_domain: no scheme, no leading www., no trailing slash; lower case."""
    text = value.strip().lower()
    if "://" in text:
        text = urlsplit(text).netloc or text
    return text.removeprefix("www.").rstrip("/")


async def _find(registry: Registry, name: str | None) -> tuple[Site, list[ApiKey]]:
    """The site named by its id or one of its domains; 404 in Plausible's words."""
    if name:
        wanted = _clean_domain(name)
        for site, keys in await registry.sites():
            if name == site.site_id or wanted in site.domains:
                return site, keys
    raise _refused(404, NO_SITE, "site_id")


def _page(
    items: Sequence[T], params: dict[str, Any], cursor: Callable[[T], str]
) -> tuple[list[T], dict[str, Any]]:
    """Plausible's cursor pagination (`after`, `before`, `limit` up to 1000): a page and
    its `meta`, whose cursors are the ids of its last and first items when more follow
    or precede them."""
    raw = _text(params, "limit")
    asked = int(raw) if raw is not None and re.fullmatch(r"[0-9]{1,6}", raw) else 0
    limit = min(asked, MAX_PAGE_LIMIT) if asked > 0 else PAGE_LIMIT
    ids = [cursor(item) for item in items]
    after, before = _text(params, "after"), _text(params, "before")
    if before is not None:
        end = ids.index(before) if before in ids else 0
        start = max(0, end - limit)
    else:
        start = ids.index(after) + 1 if after in ids else (len(ids) if after else 0)
        end = min(len(ids), start + limit)
    page = list(items[start:end])
    meta = {
        "after": ids[end - 1] if page and end < len(ids) else None,
        "before": ids[start] if page and start > 0 else None,
        "limit": limit,
    }
    return page, meta


async def list_sites(request: AdminRequest) -> Response:
    """`GET /api/v1/sites`: newest first."""
    registry = await _admin(request)
    sites = [site for site, _ in reversed(await registry.sites())]
    page, meta = _page(sites, dict(request.query_params), lambda s: s.site_id)
    return JSONResponse({"sites": [_site_json(site) for site in page], "meta": meta})


async def _domain_free(registry: Registry, domain: str, site_id: str = "") -> None:
    if await registry.holder(site_id, domains=[domain]) is not None:
        raise _refused(400, "domain: has already been taken", "domain")


def _checked(domain: str | None, timezone: str) -> tuple[str, str]:
    """The domain and time zone by hitstream's rules, refused in Plausible's form."""
    if not domain:
        raise _refused(400, "domain: can't be blank", "domain")
    try:
        body = SiteCreate(name=domain[:200], domains=[_clean_domain(domain)], timezone=timezone)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = "timezone" if error["loc"][0] == "timezone" else "domain"
        raise _refused(400, f"{field}: {error['msg']}", field) from None
    return body.domains[0], body.timezone


async def create_site(request: AdminRequest) -> Response:
    """`POST /api/v1/sites` {domain, timezone?}: the site, and (hitstream's) its first key."""
    registry = await _admin(request)
    params = await _params(request)
    domain, timezone = _checked(
        _text(params, "domain"), _text(params, "timezone") or DEFAULT_TIMEZONE
    )
    await _domain_free(registry, domain)
    site = Site(
        new_site_id(domain),
        domain,
        domains=(domain,),
        timezone=timezone,
        website_id=new_website_id(),
    )
    key, plaintext = await registry.create_site(site)
    return JSONResponse({**_site_json(site), "api_key": plaintext, "key_id": key.key_id})


async def get_site(request: AdminRequest) -> Response:
    registry = await _admin(request)
    site, _ = await _find(registry, request.path_params["site_id"])
    return JSONResponse(_site_json(site))


async def update_site(request: AdminRequest) -> Response:
    """`PUT /api/v1/sites/{site_id}` {domain}: the new domain first; the former one still
    names the site (Plausible's domain_changed_from)."""
    registry = await _admin(request)
    site, _ = await _find(registry, request.path_params["site_id"])
    params = await _params(request)
    if _text(params, "domain") is not None:
        domain, _ = _checked(_text(params, "domain"), site.timezone)
        await _domain_free(registry, domain, site.site_id)
        domains = (domain, *[d for d in site.domains if d != domain])
        site = dataclasses.replace(site, domains=domains)
        await registry.update_site(site)
    return JSONResponse(_site_json(site))


async def delete_site(request: AdminRequest) -> Response:
    """`DELETE /api/v1/sites/{site_id}`: the site and its keys go (its events stay until
    the raw retention drops them)."""
    registry = await _admin(request)
    site, keys = await _find(registry, request.path_params["site_id"])
    await registry.delete_site(site, keys)
    return JSONResponse({"deleted": True})


def _v1_goal(goal: Goal) -> dict[str, Any]:
    return {**goal_json(goal), "custom_props": {}}


async def list_goals(request: AdminRequest) -> Response:
    """`GET /api/v1/sites/goals?site_id=`: the site's goals, oldest first."""
    registry = await _admin(request)
    params = dict(request.query_params)
    name = _text(params, "site_id")
    if name is None:
        raise _refused(400, "Parameter `site_id` is required to list goals", "site_id")
    site, _ = await _find(registry, name)
    goals, meta = _page(await registry.goals(site.site_id), params, lambda g: str(g.goal_id))
    return JSONResponse({"goals": [_v1_goal(g) for g in goals], "meta": meta})


async def put_goal(request: AdminRequest) -> Response:
    """`PUT /api/v1/sites/goals`: Plausible's find-or-create; the goal as it is if its
    target (event name or page path) already has one."""
    registry = await _admin(request)
    params = await _params(request)
    name, goal_type = _text(params, "site_id"), _text(params, "goal_type")
    if name is None:
        raise _refused(400, "Parameter `site_id` is required to create a goal", "site_id")
    if goal_type not in (EVENT, PAGE):
        raise _refused(400, "Parameter `goal_type` is required to create a goal", "goal_type")
    target = "event_name" if goal_type == EVENT else "page_path"
    if _text(params, target) is None:
        raise _refused(400, f"Parameter `{target}` is required to create a goal", target)
    site, _ = await _find(registry, name)
    try:
        wanted = make_goal(
            site.site_id,
            **{target: _text(params, target)},
            display_name=_text(params, "display_name"),
            currency=_text(params, "currency"),
        )
        goal, _ = await registry.add_goal(wanted)
    except GoalError as exc:
        raise _refused(
            400, f"Something went wrong: {exc.field}: {exc.message}", exc.field
        ) from None
    return JSONResponse({"domain": domain_of(site), **_v1_goal(goal)})


async def delete_goal(request: AdminRequest) -> Response:
    """`DELETE /api/v1/sites/goals/{goal_id}` with `site_id` in the body or the query."""
    registry = await _admin(request)
    params = await _params(request)
    name = _text(params, "site_id")
    if name is None:
        raise _refused(400, "Parameter `site_id` is required to delete a goal", "site_id")
    site, _ = await _find(registry, name)
    raw = request.path_params["goal_id"]
    goal = await registry.goal(site.site_id, raw)
    if goal is None:
        raise _refused(404, NO_GOAL, "goal_id")
    await registry.delete_goal(goal)
    return JSONResponse({"deleted": True})


def routes() -> list[BaseRoute]:
    """Plausible's Sites API v1 under /api/v1/sites (goals first: `goals` is no site)."""
    return [
        Route("/api/v1/sites/goals", list_goals, methods=["GET"]),
        Route("/api/v1/sites/goals", put_goal, methods=["PUT"]),
        Route("/api/v1/sites/goals/{goal_id}", delete_goal, methods=["DELETE"]),
        Route("/api/v1/sites", list_sites, methods=["GET"]),
        Route("/api/v1/sites", create_site, methods=["POST"]),
        Route("/api/v1/sites/{site_id}", get_site, methods=["GET"]),
        Route("/api/v1/sites/{site_id}", update_site, methods=["PUT"]),
        Route("/api/v1/sites/{site_id}", delete_site, methods=["DELETE"]),
    ]

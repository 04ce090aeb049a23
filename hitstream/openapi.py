"""The OpenAPI document (/openapi.json) and Swagger UI (/docs) for the routes an app serves."""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from foundation import __version__
from foundation.http import JSONResponse
from schemas import responses as r
from schemas.event import EventIn
from schemas.plausible import OK, PlausibleEvent
from schemas.query import QueryBody
from schemas.queue import ReplayRequest
from schemas.sites import GoalCreate, SiteCreate, SiteUpdate, V1GoalCreate, V1SiteCreate
from schemas.umami import UmamiAccepted, UmamiError, UmamiSend
from sites.access import KEY_HEADER

MODELS: list[type[BaseModel]] = [
    EventIn, PlausibleEvent, SiteCreate, SiteUpdate, r.Error, r.Accepted, r.BatchAccepted, r.Stats,
    r.Health, r.QueueHealth, r.SiteCreated, r.SiteList, r.SiteInfo, r.KeyRotated, r.KeyRevoked,
    QueryBody, r.QueryAnswer, r.ShareCreated, r.QueuePanel, ReplayRequest, r.Replayed,
    UmamiSend, UmamiAccepted, UmamiError,
    r.V1Visitors, r.V1Aggregate, r.V1Rows, GoalCreate, r.GoalCreated, r.GoalList, r.GoalDeleted,
    V1SiteCreate, V1GoalCreate, r.V1Site, r.V1SiteList, r.V1GoalList, r.V1Goal, r.V1Deleted,
]  # fmt: skip

ERRORS = {
    "400": "invalid input (the details name each field)",
    "401": "missing or invalid credentials",
    "403": "not allowed for these credentials",
    "404": "no such resource",
    "409": "another site already holds this domain or website_id",
    "413": "body over HITSTREAM_MAX_BODY_BYTES",
    "415": "unsupported media type",
    "429": "rate limit exceeded, or too many failed authentications from this address "
    "(Retry-After, RateLimit-* headers)",
    "503": "an engine is unavailable or ingest is over its backlog limit (Retry-After)",
}

# Swagger UI is shipped in the package (static/swagger-ui, Apache-2.0, see its README)
# and served from here: /docs works offline and loads nothing from elsewhere.
SWAGGER_UI_DIR = Path(__file__).parent / "static" / "swagger-ui"
SWAGGER_UI_PATH = "/docs/assets"
SWAGGER_UI = f"""<!doctype html>
<html><head><title>hitstream API</title><meta charset="utf-8">
<link rel="stylesheet" href="{SWAGGER_UI_PATH}/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="{SWAGGER_UI_PATH}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#ui"}});</script>
</body></html>"""


@dataclass(frozen=True)
class Operation:
    """One documented route: what it takes and every status it answers with."""

    method: str
    path: str
    summary: str
    ok: tuple[str, str]
    body: str | tuple[str, ...] | None = None  # several: any one of them (anyOf)
    ok_text: str | None = None  # also answered as text/plain with this body
    ok_csv: bool = False  # also answered as text/csv
    ok_files: tuple[str, ...] = ()  # answered as a file of one of these types, not JSON
    body_array: bool = False
    query: tuple[tuple[str, bool, dict[str, Any]], ...] = ()
    errors: tuple[str, ...] = ()
    error_models: tuple[tuple[str, str], ...] = ()  # (status, model) not in the Error shape
    security: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default=())


# Plausible's Stats API v1 parameters (reporting/legacy_params.py checks them).
_V1_PARAMS: tuple[tuple[str, bool, dict[str, Any]], ...] = tuple(
    (name, False, {"type": "string"})
    for name in ("period", "date", "metrics", "filters", "with_imported")
)
_EVENT_ERRORS = ("400", "401", "403", "413", "415", "429", "503")
OPERATIONS = [
    Operation("post", "/event",
              "Accept one event, in hitstream's shape or Plausible's (answered `ok`, as "
              "Plausible answers)",
              ("202", "Accepted"), ("EventIn", "PlausibleEvent"), ok_text=OK,
              errors=_EVENT_ERRORS, security=("", "apiKey"), tags=("ingest",)),
    Operation("post", "/events", "Accept a batch of events (all or nothing; either shape)",
              ("202", "BatchAccepted"), ("EventIn", "PlausibleEvent"), body_array=True,
              errors=_EVENT_ERRORS, security=("", "apiKey"), tags=("ingest",)),
    Operation("post", "/api/send",
              "Accept one event in Umami's shape (its trackers and @umami/node); answered "
              "as Umami answers: 200 with ids and a cache token, a bot's `beep boop`, a 400 "
              "in Umami's shape (`Website not found.` for an unknown website_id)",
              ("200", "UmamiAccepted"), "UmamiSend",
              errors=("400", "401", "403", "413", "429", "503"),
              error_models=(("400", "UmamiError"),), security=("",), tags=("ingest",)),
    Operation("get", "/js/hitstream.js",
              "The tracking script for websites (cached for an hour)",
              ("200", ""), ok_files=("text/javascript",), tags=("ingest",)),
    Operation("get", "/js/hitstream.{version}.js",
              "The tracking script at its versioned URL (cached for a year); other "
              "versions are 404",
              ("200", ""), ok_files=("text/javascript",), errors=("404",), tags=("ingest",)),
    Operation("get", "/stats", "Totals, unique users and top paths of a site on a UTC day",
              ("200", "Stats"),
              query=(("site_id", True, {"type": "string", "minLength": 1, "maxLength": 128}),
                     ("date", False, {"type": "string", "format": "date"}),
                     ("event_type", False, {"type": "string", "minLength": 1, "maxLength": 128})),
              errors=("400", "401", "403", "503"), security=("", "apiKey", "admin"),
              tags=("reporting",)),
    Operation("post", "/api/v2/query",
              "Any range, metrics, breakdown and filters of a site (Plausible's Stats API v2 "
              "shape; CSV with Accept: text/csv or format csv)",
              ("200", "QueryAnswer"), "QueryBody", ok_csv=True,
              errors=("400", "401", "403", "413", "415", "503"),
              security=("", "apiKey", "admin"), tags=("reporting",)),
    *(Operation("get", f"/api/v1/stats/{path}", summary, ("200", model),
                query=(("site_id", True, {"type": "string"}), *params),
                errors=("400", "401", "503"), security=("", "apiKey", "admin"),
                tags=("reporting",))
      for path, summary, model, params in (
          ("realtime/visitors", "Visitors of the last 5 minutes, a bare number (Plausible's "
           "Stats API v1; site_id: the site's id or one of its domains)", "V1Visitors", ()),
          ("aggregate", "Totals of a period (Plausible's Stats API v1)", "V1Aggregate",
           (*_V1_PARAMS, ("compare", False, {"type": "string"}))),
          ("timeseries", "Every bucket of a period (Plausible's Stats API v1)", "V1Rows",
           (*_V1_PARAMS, ("interval", False, {"type": "string"}))),
          ("breakdown", "A period by a property's values (Plausible's Stats API v1)", "V1Rows",
           (*_V1_PARAMS, *((name, False, {"type": "string"})
                           for name in ("property", "limit", "page")))),
      )),
    Operation("get", "/api/sites/{site_id}/export",
              "A site's raw events over a range, streamed (NDJSON, CSV or Parquet)",
              ("200", ""), ok_files=("application/x-ndjson", "text/csv",
                                     "application/vnd.apache.parquet"),
              query=(("from", True, {"type": "string", "minLength": 1, "maxLength": 40}),
                     ("to", True, {"type": "string", "minLength": 1, "maxLength": 40}),
                     ("format", False, {"type": "string", "enum": ["ndjson", "csv", "parquet"]})),
              errors=("400", "401", "403", "429", "503"), security=("admin",),
              tags=("reporting",)),
    Operation("get", "/health", "Engines this process uses and whether its roles can work",
              ("200", "Health"), errors=("503",), tags=("health",)),
    Operation("get", "/health/queue",
              "Stream, group lag, pending and dead letters (key mode: admin token)",
              ("200", "QueueHealth"), errors=("401", "403", "503"), security=("", "admin"),
              tags=("health",)),
    Operation("post", "/api/sites", "Create a site and its first key", ("201", "SiteCreated"),
              "SiteCreate", errors=("400", "401", "403", "409", "413", "415", "503"),
              security=("admin",), tags=("sites",)),
    Operation("get", "/api/sites", "List sites and their keys", ("200", "SiteList"),
              errors=("401", "403", "503"), security=("admin",), tags=("sites",)),
    Operation("patch", "/api/sites/{site_id}", "Change a site's name, public flag or origins",
              ("200", "SiteInfo"), "SiteUpdate",
              errors=("400", "401", "403", "404", "409", "413", "415", "503"),
              security=("admin",), tags=("sites",)),
    Operation("post", "/api/sites/{site_id}/keys", "Rotate: a new key, old ones expire later",
              ("201", "KeyRotated"), errors=("401", "403", "404", "503"),
              security=("admin",), tags=("sites",)),
    Operation("post", "/api/sites/{site_id}/shares",
              "A share token (a read-only key) and the shared link that carries it",
              ("201", "ShareCreated"), errors=("401", "403", "404", "503"),
              security=("admin",), tags=("sites",)),
    Operation("get", "/api/queue",
              "The queue panel: state, consumers, oldest dead letters, recent rates",
              ("200", "QueuePanel"), errors=("401", "403", "503"), security=("admin",),
              tags=("health",)),
    Operation("post", "/api/queue/dead-letters/replay",
              "Put dead letters back on the stream (these ids, or all)",
              ("200", "Replayed"), "ReplayRequest",
              errors=("400", "401", "403", "413", "415", "503"), security=("admin",),
              tags=("health",)),
    Operation("delete", "/api/sites/{site_id}/keys/{key_id}",
              "Revoke a key or share token at once",
              ("200", "KeyRevoked"), errors=("401", "403", "404", "503"),
              security=("admin",), tags=("sites",)),
    Operation("get", "/api/sites/{site_id}/goals", "A site's goals", ("200", "GoalList"),
              errors=("401", "403", "404", "503"), security=("admin",), tags=("sites",)),
    Operation("put", "/api/sites/{site_id}/goals",
              "Find or create a goal (200: it was there, as it is; 201: made)",
              ("201", "GoalCreated"), "GoalCreate",
              errors=("400", "401", "403", "404", "413", "415", "503"),
              security=("admin",), tags=("sites",)),
    Operation("delete", "/api/sites/{site_id}/goals/{goal_id}", "Delete a goal",
              ("200", "GoalDeleted"), errors=("401", "403", "404", "503"),
              security=("admin",), tags=("sites",)),
    *(Operation(method, path, summary, ("200", model), body,
                query=tuple((name, False, {"type": "string"}) for name in query),
                errors=("400", "401", "404", "503"), security=("admin",), tags=("sites-v1",))
      for method, path, summary, model, body, query in (
          ("get", "/api/v1/sites", "Sites, newest first (Plausible's Sites API v1)",
           "V1SiteList", None, ("after", "before", "limit")),
          ("post", "/api/v1/sites", "Create a site (Plausible's Sites API v1; its first key "
           "is in this answer only)", "V1Site", "V1SiteCreate", ()),
          ("get", "/api/v1/sites/{site_id}", "A site by its id or a domain", "V1Site", None, ()),
          ("put", "/api/v1/sites/{site_id}", "Change a site's domain (the former one still "
           "names it)", "V1Site", None, ()),
          ("delete", "/api/v1/sites/{site_id}", "Delete a site: its keys are revoked",
           "V1Deleted", None, ()),
          ("get", "/api/v1/sites/goals", "A site's goals", "V1GoalList", None,
           ("site_id", "after", "before", "limit")),
          ("put", "/api/v1/sites/goals", "Find or create a goal", "V1Goal", "V1GoalCreate", ()),
          ("delete", "/api/v1/sites/goals/{goal_id}", "Delete a goal (site_id in the body or "
           "the query)", "V1Deleted", None, ("site_id",)),
      )),
]  # fmt: skip


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(op: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {"summary": op.summary, "tags": list(op.tags)}
    params = [
        {"name": name, "in": "query", "required": required, "schema": schema}
        for name, required, schema in op.query
    ]
    params += [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", op.path)
    ]
    if params:
        spec["parameters"] = params
    if op.body:
        names = (op.body,) if isinstance(op.body, str) else op.body
        one = _ref(names[0]) if len(names) == 1 else {"anyOf": [_ref(name) for name in names]}
        schema = {"type": "array", "items": one} if op.body_array else one
        content = {"application/json": {"schema": schema}}
        if op.tags == ("ingest",):
            content["text/plain"] = {"schema": schema}  # navigator.sendBeacon
        spec["requestBody"] = {"required": True, "content": content}
    status, model = op.ok
    answers: dict[str, Any] = {
        status: {"description": "success", "content": {"application/json": {"schema": _ref(model)}}}
    }
    if op.ok_files:
        binary = {"type": "string", "format": "binary"}
        answers[status]["content"] = {media: {"schema": binary} for media in op.ok_files}
    if op.ok_text is not None:
        text = {"schema": {"type": "string", "const": op.ok_text}}
        answers[status]["content"]["text/plain"] = text
    if op.ok_csv:
        answers[status]["content"]["text/csv"] = {"schema": {"type": "string"}}
    # Whatever checks credentials also refuses an address after too many wrong ones.
    errors = (*op.errors, "429") if "401" in op.errors else op.errors
    models = dict(op.error_models)
    for code in sorted(set(errors)):
        answers[code] = {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": _ref(models.get(code, "Error"))}},
        }
    spec["responses"] = answers
    if op.security:
        spec["security"] = [{} if name == "" else {name: []} for name in op.security]
    return spec


@functools.cache
def _model_schemas() -> dict[str, Any]:
    """The request and answer models' JSON schemas, built once per process (an app
    factory called again, as tests and workers do, reuses them)."""
    _, schemas = models_json_schema(
        [(model, "validation") for model in MODELS], ref_template="#/components/schemas/{model}"
    )
    return schemas


def document(served: set[tuple[str, str]], site_id_required: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the (METHOD, path) pairs this app serves.

    Without API keys (open mode) each event must name its site.
    """
    schemas = copy.deepcopy(_model_schemas())
    if site_id_required:
        event = schemas["$defs"]["EventIn"]
        event["required"] = ["site_id", *event["required"]]
        event["properties"]["site_id"] = event["properties"]["site_id"]["anyOf"][0]
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        for path in (op.path, "/api" + op.path) if not op.path.startswith("/api") else (op.path,):
            if (op.method.upper(), path) in served:
                paths.setdefault(path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "hitstream", "version": __version__, "description": __doc__},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": KEY_HEADER},
                "admin": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _served(app_routes: list[BaseRoute]) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app_routes
        if isinstance(route, Route)
        for method in (route.methods or ())
        if method != "HEAD"
    }


def document_for(app_routes: list[BaseRoute], site_id_required: bool) -> dict[str, Any]:
    """The document describing exactly these routes."""
    return document(_served(app_routes), site_id_required)


def routes(app_routes: list[BaseRoute], site_id_required: bool) -> list[BaseRoute]:
    """/openapi.json, /docs and the index (`/`: JSON, or the dashboard for a browser
    where it is served) for the routes given."""
    served = _served(app_routes)
    spec = document(served, site_id_required)

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    async def docs(request: Request) -> Response:
        return HTMLResponse(SWAGGER_UI)

    index_body = {
        "service": "hitstream",
        "version": __version__,
        "docs": "/docs",
        "openapi": "/openapi.json",
        "health": "/health",
        "metrics": "/metrics",
        "routes": sorted(f"{method} {path}" for method, path in served if path != "/"),
    }

    dashboard = ("GET", "/dashboard") in served

    async def index(request: Request) -> Response:
        # A browser at `/` wants the dashboard, where this process serves one.
        if dashboard and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/dashboard", status_code=303)
        return JSONResponse(index_body)

    return [
        Route("/", index, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Mount(SWAGGER_UI_PATH, StaticFiles(directory=SWAGGER_UI_DIR), name="swagger-ui"),
    ]

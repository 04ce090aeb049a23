"""Direct routes answer as the whole app would: the same middleware, the same handlers."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from foundation.direct import DirectRoutes
from foundation.http import EXCEPTION_HANDLERS, APIError


async def ok(request: Request[Any]) -> Response:
    return JSONResponse({"client": request.client.host if request.client else None}, 202)


async def refused(request: Request[Any]) -> Response:
    raise APIError(400, "no", [{"field": "x", "message": "bad"}])


async def broken(request: Request[Any]) -> Response:
    raise KeyError("a bug")


class Tag:
    """A middleware that marks what it saw: the route the router (or DirectRoutes) set."""

    seen: ClassVar[list[str]] = []

    def __init__(self, app: ASGIApp, label: str) -> None:
        self.app, self.label = app, label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:  # as RequestMetrics records: a request that raised counts too
            if scope["type"] == "http":
                Tag.seen.append(f"{self.label}:{getattr(scope.get('route'), 'path', None)}")


def app(direct: bool) -> Starlette:
    routes = [
        Route("/ok", ok, methods=["POST"]),
        Route("/refused", refused, methods=["POST"]),
        Route("/broken", broken, methods=["POST"]),
        Route("/other", ok, methods=["POST"]),
    ]
    middleware = [Middleware(Tag, label="m")]
    built = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, middleware=middleware)
    if not direct:
        return built
    stack = built.build_middleware_stack()
    wraps = [lambda inner: Tag(inner, label="m")]
    built.middleware_stack = DirectRoutes(stack, routes[:3], EXCEPTION_HANDLERS, wraps)
    return built


@pytest.mark.parametrize("path", ["/ok", "/refused", "/broken", "/other", "/missing"])
def test_a_direct_route_answers_as_the_app_does(path: str) -> None:
    answers = []
    for direct in (False, True):
        Tag.seen = []
        with TestClient(app(direct), raise_server_exceptions=False) as client:
            response = client.post(path, json={})
        answers.append((response.status_code, response.json(), Tag.seen))
    assert answers[0] == answers[1]
    status, body, seen = answers[1]
    expected = {"/ok": 202, "/refused": 400, "/broken": 500, "/other": 202, "/missing": 404}
    assert status == expected[path], body
    if path != "/missing":
        assert seen == [f"m:{path}"]  # the middleware ran once and saw the route

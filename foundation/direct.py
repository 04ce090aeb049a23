"""Direct routes: the hot endpoints (single events) reached without Starlette's layers.

A request for one of the given (method, path) pairs goes through the app's own
middleware (the same classes with the same arguments, given here) straight to its endpoint,
and an exception it raises is answered by the app's exception handlers; everything else
goes to the whole app. Skipped for those requests: Starlette's error and exception
middlewares (their work is the handlers' lookup, done here by the same table) and the
router's scan of every route. Measured on `POST /event` in process: 172 -> 135 µs of CPU
(bench/README.md, issue 24).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request[Any], Exception], Any]
# What wraps the direct endpoints (the app's middleware, outermost first).
Wrap = Callable[..., ASGIApp]


class DirectRoutes:
    """In front of `app`: these routes' requests go to their endpoints directly."""

    def __init__(
        self,
        app: ASGIApp,
        routes: list[Route],
        handlers: Mapping[Any, Handler],
        wraps: Sequence[Wrap],
    ) -> None:
        self.app = app
        self._routes = {
            (method, route.path): route for route in routes for method in route.methods or ()
        }
        self._handlers = handlers
        direct: ASGIApp = self._endpoint
        for wrap in reversed(wraps):
            direct = wrap(direct)
        self._direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) in self._routes:
            await self._direct(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes[(scope["method"], scope["path"])]
        scope["route"] = route  # as the router sets it: the metrics' route label
        request: Request[Any] = Request(scope, receive)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            response = await self._answer(request, exc)
        await response(scope, receive, send)

    async def _answer(self, request: Request[Any], exc: Exception) -> Response:
        """The app's answer to `exc`: the handler of its nearest class in the table."""
        for cls in type(exc).__mro__:
            handler = self._handlers.get(cls)
            if handler is not None:
                answer = handler(request, exc)
                return await answer if inspect.isawaitable(answer) else answer  # type: ignore[no-any-return]
        raise exc

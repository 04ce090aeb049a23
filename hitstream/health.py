"""GET /health: 200 when every engine this process uses answers, 503 otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hitstream.http import JSONResponse

CHECK_TIMEOUT_S = 2.0

Check = Callable[[], Awaitable[bool]]


async def _run(check: Check) -> str:
    try:
        ok = await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
    except Exception:
        ok = False
    return "ok" if ok else "unavailable"


def blocking_check(ping: Callable[[], bool]) -> Check:
    """Wrap a blocking ping (the ClickHouse client) so it runs in a worker thread."""

    async def check() -> bool:
        return await to_thread.run_sync(ping, abandon_on_cancel=True)

    return check


async def get_health(request: Request) -> Response:
    """Report each engine's state; 503 if any is unreachable."""
    checks: dict[str, Check] = request.state.health_checks
    names = list(checks)
    results = await asyncio.gather(*(_run(checks[name]) for name in names))
    engines = dict(zip(names, results, strict=True))
    healthy = all(state == "ok" for state in engines.values())
    body = {"status": "ok" if healthy else "unavailable", "engines": engines}
    return JSONResponse(body, status_code=200 if healthy else 503)


def routes() -> list[BaseRoute]:
    """Health routes, also under `/api`."""
    return [Route(prefix + "/health", get_health, methods=["GET"]) for prefix in ("", "/api")]

"""GET /health: 200 when every engine this process uses answers and every role it runs
can do its work (ingest can append, the consumer is reading), 503 otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypedDict

from anyio import CapacityLimiter, to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from foundation.http import JSONResponse, api_routes, retry_later

CHECK_TIMEOUT_S = 2.0

Check = Callable[[], Awaitable[bool]]


class HealthState(TypedDict):
    """What /health reads from the app's lifespan state: a check per engine and role."""

    engine_checks: dict[str, Check]
    role_checks: dict[str, Check]


async def _run(check: Check) -> str:
    try:
        ok = await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
    except Exception:
        ok = False
    return "ok" if ok else "unavailable"


async def _states(checks: dict[str, Check]) -> dict[str, str]:
    results = await asyncio.gather(*(_run(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


def blocking_check(ping: Callable[[], bool]) -> Check:
    """Wrap a blocking ping (the ClickHouse client) so it runs in a thread of its own
    (a thread pool that other work fills must not make the engine look down)."""
    threads = CapacityLimiter(1)

    async def check() -> bool:
        return await to_thread.run_sync(ping, abandon_on_cancel=True, limiter=threads)

    return check


async def get_health(request: Request[HealthState]) -> Response:
    """Report each engine's and role's state; 503 (with Retry-After) if any is not ok."""
    engines, roles = await asyncio.gather(
        _states(request.state["engine_checks"]), _states(request.state["role_checks"])
    )
    healthy = all(state == "ok" for state in [*engines.values(), *roles.values()])
    body = {"status": "ok" if healthy else "unavailable", "engines": engines, "roles": roles}
    if healthy:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers=retry_later())


def routes() -> list[BaseRoute]:
    """The health route, also under `/api`."""
    return api_routes("GET", [("/health", get_health)])

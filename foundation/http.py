"""HTTP plumbing shared by every role: JSON responses, the error shape, exception handlers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import orjson
from clickhouse_connect.driver.exceptions import Error as ClickHouseError
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisClusterException, RedisError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from foundation import jsonbody
from foundation.errors import REDIS_ERRORS, EngineUnavailable, HitstreamError

Endpoint = Callable[..., Awaitable[Response]]
ModelT = TypeVar("ModelT", bound=BaseModel)

log = logging.getLogger(__name__)


class JSONResponse(Response):
    """A JSON response serialised with orjson (several times faster than the stdlib)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class APIError(HitstreamError):
    """An error answered as `{"error": ..., "details": [...]}` with the given status
    (`extra` adds keys beside them, e.g. Plausible's `errors` for its shape)."""

    def __init__(
        self,
        status_code: int,
        error: str,
        details: Iterable[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.details = [dict(item) for item in details]
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def error_body(
    error: str, details: Iterable[Mapping[str, Any]] = (), extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The one error shape: every route's, and the HTTP protocol's own refusals'."""
    return {**(extra or {}), "error": error, "details": [dict(item) for item in details]}


def error_response(
    status_code: int,
    error: str,
    details: Iterable[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """An error answer in the one error shape."""
    body = error_body(error, details, extra)
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


def validation_details(exc: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """Turn pydantic errors into `{"field", "message"}` items, never echoing the input."""
    details = []
    for item in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = item["loc"]
        field = ".".join(str(part) for part in loc if not isinstance(part, int)) or "body"
        detail: dict[str, Any] = {"field": field, "message": item["msg"]}
        indexes = [part for part in loc if isinstance(part, int)]
        if indexes:
            detail["index"] = indexes[0]
        if prefix:
            detail["field"] = f"{prefix}.{field}"
        details.append(detail)
    return details


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc.status_code, exc.error, exc.details, exc.headers, exc.extra)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


# Seconds a client should wait before retrying after a 503.
RETRY_AFTER_S = 1


def retry_later() -> dict[str, str]:
    """The headers of every 503: when to try again."""
    return {"Retry-After": str(RETRY_AFTER_S)}


def unavailable(error: str, field: str, reason: str = "temporarily unavailable") -> APIError:
    """The one 503 answer: a plain message and Retry-After.

    `reason` is ours to word; an engine's own text (file paths, ports, AOF errors) goes
    to the log, never to the client.
    """
    return APIError(503, error, [{"field": field, "message": reason}], headers=retry_later())


def engine_unavailable(request: Request[Any], exc: Exception) -> APIError:
    """The 503 for a Redis or ClickHouse failure, which is logged (not told to the client)."""
    if isinstance(exc, EngineUnavailable):
        engine = exc.engine
    else:
        engine = "redis" if isinstance(exc, REDIS_ERRORS) else "clickhouse"
    log.warning("%s error on %s %s: %s", engine, request.method, request.url.path, exc)
    return unavailable(f"{engine} unavailable, retry later", engine)


async def on_engine_error(request: Request, exc: Exception) -> Response:
    """An engine did not answer: the client may retry; nothing was half-done."""
    return await on_api_error(request, engine_unavailable(request, exc))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """Last resort: log the traceback, answer JSON without it."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error")


JSON_TYPES = frozenset({"application/json"})
# navigator.sendBeacon cannot send application/json without a CORS preflight.
BEACON_TYPES = frozenset({"application/json", "text/plain"})


_BODY_DEADLINE = {"field": "body", "message": "the connection closed before the whole body"}


async def read_json(
    request: Request[Any], max_bytes: int, accepted: frozenset[str] = JSON_TYPES
) -> Any:
    """The request's JSON body, read up to `max_bytes` and parsed strictly.

    413 when the declared or actual size is over the cap (an oversized declared
    Content-Length is refused without reading), 415 for other media types, 400 for
    anything that is not acceptable JSON. A body that stops coming is cut off by the
    server (408, hitstream/server.py).
    """
    media_type = (header(request, "content-type") or "application/json").split(";")[0]
    if media_type.strip().lower() not in accepted:
        raise APIError(
            415,
            f"unsupported media type {media_type.strip()[:100]!r}",
            [{"field": "content-type", "message": f"use one of {', '.join(sorted(accepted))}"}],
        )
    body = await read_body(request, max_bytes)
    try:
        return jsonbody.parse(body)
    except jsonbody.MalformedJSON as exc:
        raise APIError(
            400, "malformed JSON body", [{"field": "body", "message": str(exc)}]
        ) from None


async def read_body(request: Request[Any], max_bytes: int) -> bytes:
    """The request's body, refused with 413 past `max_bytes` (a declared Content-Length
    over it unread); 408 when it stops coming before its end."""
    declared = header(request, "content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise _too_large(max_bytes)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
    except ClientDisconnect:
        # Gone, or cut off by the server's body deadline (hitstream/server.py), which
        # has answered 408 already; this answer goes nowhere.
        raise APIError(408, "request body incomplete", [_BODY_DEADLINE]) from None
    return bytes(body)


async def read_model(
    request: Request[Any], model: type[ModelT], max_bytes: int, error: str = "invalid request body"
) -> ModelT:
    """The JSON body (read_json) validated as `model`; 400 `error` naming each field."""
    raw = await read_json(request, max_bytes)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise APIError(400, error, validation_details(exc)) from None


def _too_large(max_bytes: int) -> APIError:
    return APIError(
        413, "request body too large", [{"field": "body", "message": f"at most {max_bytes} bytes"}]
    )


# Where header() keeps a request's headers by name, read once (in the ASGI scope, which
# every Request over the same request shares).
_HEADERS = "hitstream.headers"


def header(request: Request[Any], name: str) -> str | None:
    """A request header's value (the first of that name, as Starlette's `headers.get`
    gives it; `name` in lower case), its headers read into a dict once per request:
    the hot routes ask for five, each a scan of the whole list through `headers.get`."""
    found: dict[bytes, bytes] | None = request.scope.get(_HEADERS)
    if found is None:
        found = {}
        for key, value in request.scope["headers"]:
            found.setdefault(key, value)
        request.scope[_HEADERS] = found
    value = found.get(name.encode("latin-1"))
    return None if value is None else value.decode("latin-1")


def client_ip(request: Request[Any]) -> str:
    """The client's address (from X-Forwarded-For only behind a trusted proxy: uvicorn
    applies HITSTREAM_FORWARDED_ALLOW_IPS). Kept in memory only: hashed where it is used."""
    return request.client.host if request.client else ""


def api_routes(method: str, table: Iterable[tuple[str, Endpoint]]) -> list[BaseRoute]:
    """Each `(path, endpoint)` at its path and under `/api` (the seeds used both)."""
    return [
        Route(prefix + path, endpoint, methods=[method])
        for path, endpoint in table
        for prefix in ("", "/api")
    ]


EXCEPTION_HANDLERS: dict[Any, Any] = {
    APIError: on_api_error,
    HTTPException: on_http_exception,
    RedisError: on_engine_error,
    RedisClusterException: on_engine_error,
    ClickHouseError: on_engine_error,
    EngineUnavailable: on_engine_error,
    Exception: on_unexpected,
}

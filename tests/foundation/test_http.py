"""foundation/http.py: request headers read once, as Starlette's headers.get reads them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from foundation.http import header

RAW = [
    (b"user-agent", b"Mozilla/5.0 \xe9"),
    (b"x-api-key", b"first"),
    (b"x-api-key", b"second"),
    (b"content-length", b"12"),
]


def _request(raw: list[tuple[bytes, bytes]]) -> Request[Any]:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


def test_a_header_is_what_starlettes_headers_get_gives() -> None:
    request = _request(RAW)
    for name in ("user-agent", "x-api-key", "content-length", "origin"):
        assert header(request, name) == request.headers.get(name), name
    assert header(request, "x-api-key") == "first"  # the first of a repeated name
    assert header(request, "origin") is None
    assert header(request, "user-agent") == "Mozilla/5.0 \u00e9"  # latin-1, as ASGI sends


def test_every_request_over_one_scope_reads_the_same_headers() -> None:
    scope = {"type": "http", "method": "POST", "path": "/", "headers": RAW}
    assert header(Request(scope), "content-length") == "12"
    assert header(Request(scope), "content-length") == "12"

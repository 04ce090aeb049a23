"""GET /js/hitstream.js: the tracking script websites load, and its versioned copy.

The plain URL is what the snippet names: cached for an hour, revalidated by ETag, so a
new release reaches sites within the hour. `/js/hitstream.<version>.js` (version: the
first hex digits of the script's SHA-256) never changes, so it is cached for a year
and can be pinned with Subresource Integrity. Both are sent gzipped to browsers that
accept it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from foundation.http import APIError

PATH = "/js/hitstream.js"
MEDIA_TYPE = "text/javascript; charset=utf-8"
PLAIN_MAX_AGE_S = 3600
VERSIONED_MAX_AGE_S = 365 * 86400


@dataclass(frozen=True)
class Script:
    """The tracker as shipped: its bytes, gzipped bytes, version and integrity."""

    source: bytes
    gzipped: bytes
    version: str
    integrity: str

    @property
    def versioned_path(self) -> str:
        return f"/js/hitstream.{self.version}.js"


def load() -> Script:
    """The tracker from the package data."""
    source = resources.files("ingest").joinpath("static/hitstream.js").read_bytes()
    digest = hashlib.sha256(source)
    return Script(
        source=source,
        gzipped=gzip.compress(source, compresslevel=9, mtime=0),
        version=digest.hexdigest()[:12],
        integrity="sha256-" + base64.b64encode(digest.digest()).decode(),
    )


SCRIPT = load()


def _answer(request: Request, max_age: str) -> Response:
    etag = f'"{SCRIPT.version}"'
    headers = {
        "Cache-Control": max_age,
        "ETag": etag,
        "Vary": "Accept-Encoding",
        # Lets a page load it with integrity="..." crossorigin="anonymous".
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = SCRIPT.source
    if "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = SCRIPT.gzipped, "gzip"
    return Response(body, media_type=MEDIA_TYPE, headers=headers)


async def get_script(request: Request) -> Response:
    """The tracker at its plain URL (cached for an hour)."""
    return _answer(request, f"public, max-age={PLAIN_MAX_AGE_S}")


async def get_versioned_script(request: Request) -> Response:
    """The tracker at its versioned URL (cached for a year); other versions are 404."""
    if request.path_params["version"] != SCRIPT.version:
        raise APIError(
            404,
            "no such tracker version",
            [{"field": "path", "message": f"the current script is {SCRIPT.versioned_path}"}],
        )
    return _answer(request, f"public, max-age={VERSIONED_MAX_AGE_S}, immutable")


def routes() -> list[BaseRoute]:
    """The tracker's two URLs."""
    return [
        Route(PATH, get_script, methods=["GET", "HEAD"]),
        Route("/js/hitstream.{version}.js", get_versioned_script, methods=["GET", "HEAD"]),
    ]

"""The framework ceiling: a bare Starlette route that reads the body and answers 202.

Served by uvicorn with the same settings as `hitstream serve` (uvloop, httptools,
no access log, one process), so `ingest_ratio` compares like with like.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ACCEPTED = b'{"status":"accepted"}'


async def accept(request: Request) -> Response:
    await request.body()
    return Response(ACCEPTED, status_code=202, media_type="application/json")


app = Starlette(routes=[Route("/event", accept, methods=["POST"])])

if __name__ == "__main__":
    # `python -m bench.ceiling PORT [WORKERS]`: WORKERS processes on the port (uvicorn's
    # own), the ceiling beside `hitstream ingest --workers`.
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    uvicorn.run(
        "bench.ceiling:app" if workers > 1 else app,
        workers=workers,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )

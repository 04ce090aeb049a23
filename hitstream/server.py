"""The HTTP server: uvicorn with bounds a hostile client cannot push past.

uvicorn's httptools protocol accepts any number of connections, waits for ever for a
request's headers and body, keeps headers and URLs of any size in memory, and builds a
long URL by repeated concatenation (a 100 MB URL sent in 4 KB pieces froze the event
loop for 17.6 s). Here, per connection: the request head (request line and headers)
must arrive within `header_timeout_s` and fit in MAX_HEAD_BYTES, the URL in
MAX_URL_BYTES, the body within `body_timeout_s`; a client whose socket stays full
(writing paused) for `send_timeout_s` is cut, so a streamed answer it does not read
cannot hold what the answer holds (an engine client); and the server holds at most
`max_connections` at once, closing extra ones as soon as they open (their
descriptors are the scarce resource). The descriptor limit is raised
to the hard limit at start so that cap, not EMFILE, is what a flood meets.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import weakref
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from foundation.errors import HitstreamError
from foundation.http import error_body

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_URL_BYTES = 8 * 1024
# Descriptors kept for everything but client connections (Redis, ClickHouse, files).
RESERVED_FDS = 256


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the descriptor limit from %d: %s", soft, exc)
    return soft


def connection_cap(max_connections: int, fd_limit: int) -> int:
    """Connections the server holds at most: the setting, within the descriptor limit."""
    return max(1, min(max_connections, fd_limit - RESERVED_FDS))


class _Refused(HitstreamError):
    """Raised from a parser callback to stop parsing a request being refused."""


# How often the deadlines of every connection are checked: one timer per server, not
# one per request (a timer per request cost the hot path about 5% of its throughput).
SWEEP_S = 0.5
_SWEEPING: weakref.WeakSet[Any] = weakref.WeakSet()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines, size limits and a connection cap.

    A request is in one phase at a time: its head arriving (deadline `header_timeout_s`
    from its first byte, or from the connection's opening), its body arriving (deadline
    `body_timeout_s` once the head is in), or neither (the app is answering, or the
    connection idles between requests under uvicorn's keep-alive timeout).
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    send_timeout_s: float = 30.0
    max_connections: int = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = "head"
        self._since = self.loop.time()
        self._head_bytes = 0
        self._refusal: tuple[int, str] | None = None
        self._paused_since: float | None = None

    def pause_writing(self) -> None:
        super().pause_writing()
        self._paused_since = self.loop.time()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._paused_since = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("over %d connections: closing a new one", self.max_connections)
            transport.abort()
            return
        self._enter("head")
        if self.server_state not in _SWEEPING:
            _SWEEPING.add(self.server_state)
            self.loop.call_later(SWEEP_S, _sweep, self.loop, self.server_state)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, plus the head's size check and the answer to a refused request."""
        if self._refusal is not None or self.transport.is_closing():
            return
        if self._phase == "head":
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is None:
                self.logger.warning("Invalid HTTP request received.")
                self._refuse(400, "Invalid HTTP request.")
                return
        if self._refusal is None and self._phase == "head" and self._head_bytes > MAX_HEAD_BYTES:
            self._refusal = (431, "Request header fields too large.")
        if self._refusal is not None:
            self._refuse(*self._refusal)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._enter("head")

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_URL_BYTES:
            self._refusal = (414, "URI too long.")
            raise _Refused  # stops the parser; data_received answers
        super().on_url(url)

    def on_headers_complete(self) -> None:
        self._enter("body")
        if self._refusal is None:
            super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._enter("answering")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._phase == "answering":
            self._enter("idle")

    def _enter(self, phase: str) -> None:
        self._phase, self._since = phase, self.loop.time()

    def check_deadline(self, now: float) -> None:
        """Called by the sweep: answer 408 to a head or body that is taking too long; cut
        a client whose socket has stayed full for `send_timeout_s`."""
        paused = self._paused_since
        if paused is not None and now - paused > self.send_timeout_s:
            log.warning("a client read none of its answer for %.0fs: cut", now - paused)
            self.transport.abort()
        elif self._phase == "head" and now - self._since > self.header_timeout_s:
            self._refuse(408, "Request timeout.")
        elif self._phase == "body" and now - self._since > self.body_timeout_s:
            if self.cycle is None or not self.cycle.response_started:
                self._refuse(408, "Request body timeout.")
            else:
                self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer in the API's error shape (as the app would) and close the connection."""
        if self.transport.is_closing():
            return
        body = orjson.dumps(error_body(message))
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: application/json\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()


def _sweep(loop: asyncio.AbstractEventLoop, server_state: Any) -> None:
    """Check every connection's deadline, then schedule the next sweep."""
    now = loop.time()
    for connection in list(server_state.connections):
        if isinstance(connection, GuardedProtocol):
            connection.check_deadline(now)
    loop.call_later(SWEEP_S, _sweep, loop, server_state)


def guarded_protocol(
    header_timeout_s: float, body_timeout_s: float, send_timeout_s: float, max_connections: int
) -> type[GuardedProtocol]:
    """The protocol class uvicorn instantiates per connection, with these limits."""
    limits = {
        "header_timeout_s": header_timeout_s,
        "body_timeout_s": body_timeout_s,
        "send_timeout_s": send_timeout_s,
        "max_connections": max_connections,
    }
    return type("GuardedProtocol", (GuardedProtocol,), limits)

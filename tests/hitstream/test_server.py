"""Slow and huge requests against a live `serve`: each is cut off early and cheaply,
and a legitimate client is still served (uvicorn's protocol guarded in hitstream/server.py)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from foundation.testing import memory_mb
from hitstream.server import MAX_HEAD_BYTES, MAX_URL_BYTES
from tests.helpers import HitstreamProcess, event, wait_for

pytestmark = pytest.mark.e2e

MAX_CONNECTIONS = 100


@pytest.fixture
def live(tmp_path: Path) -> Iterator[HitstreamProcess]:
    env = {
        "HITSTREAM_DATA_DIR": str(tmp_path / "data"),
        "HITSTREAM_HEADER_TIMEOUT_S": "1",
        "HITSTREAM_BODY_TIMEOUT_S": "1",
        "HITSTREAM_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "HITSTREAM_RATE_LIMIT_IP_PER_S": "0",
    }
    server = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    yield server
    assert server.stop() == 0, server.log()
    assert "embedded valkey exited" not in server.log_path.read_text()


def connect(server: HitstreamProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def answer_of(sock: socket.socket) -> bytes:
    """What the server sent before closing (b'' if it closed without a word)."""
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def accepts_an_event(server: HitstreamProcess) -> None:
    answer = httpx.post(server.base_url + "/event", json=event("flood"), timeout=10)
    assert answer.status_code == 202, answer.text


def rss_mb(server: HitstreamProcess) -> float:
    assert server.proc is not None
    return memory_mb(server.proc.pid, "VmRSS")


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Client sockets a test opens; all closed at its end."""
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def test_slowloris_connections_are_cut_at_the_header_deadline(
    live: HitstreamProcess, sockets: list[socket.socket]
) -> None:
    socks = [connect(live) for _ in range(50)]
    sockets += socks
    for sock in socks:
        sock.sendall(b"POST /event HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    accepts_an_event(live)  # served while they trickle
    closed = 0
    deadline = time.monotonic() + 15
    while closed < len(socks) and time.monotonic() < deadline:
        closed = 0
        for sock in socks:
            try:
                sock.sendall(b"a")  # one more byte of the header, forever
            except OSError:
                closed += 1
        time.sleep(0.2)  # the attacker's pace, not a wait for a condition
    assert closed == len(socks), "every slow head was cut off"
    assert all(answer_of(s).startswith(b"HTTP/1.1 408") for s in socks[:5])
    accepts_an_event(live)


def test_unterminated_huge_headers_are_refused_without_holding_memory(
    live: HitstreamProcess,
) -> None:
    before = rss_mb(live)
    for _ in range(3):
        sock = connect(live)
        sock.sendall(b"POST /event HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        with contextlib.suppress(OSError):
            while sent < 32 * 1024 * 1024:  # 32 MB of one header, never terminated
                sock.sendall(b"b" * 65536)
                sent += 65536
        assert answer_of(sock).startswith(b"HTTP/1.1 431"), "refused past the head cap"
        sock.close()
    grown = rss_mb(live) - before
    assert grown < 3 * MAX_HEAD_BYTES / 2**20 + 20, f"the server grew {grown:.0f} MB"
    accepts_an_event(live)


def test_a_huge_url_in_small_pieces_is_refused_early(
    live: HitstreamProcess, sockets: list[socket.socket]
) -> None:
    sock = connect(live)
    sockets.append(sock)
    sock.sendall(b"GET /health?q=")
    sent = 0
    with contextlib.suppress(OSError):
        while sent < 100 * 1024 * 1024:
            sock.sendall(b"u" * 4096)
            sent += 4096
    assert answer_of(sock).startswith(b"HTTP/1.1 414")
    assert sent < 64 * MAX_URL_BYTES * 1024, "the server stopped reading long before 100 MB"
    assert httpx.get(live.base_url + "/health", timeout=5).status_code == 200


def test_a_body_that_stops_coming_is_answered_408(
    live: HitstreamProcess, sockets: list[socket.socket]
) -> None:
    sock = connect(live)
    sockets.append(sock)
    head = b"POST /event HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sock.sendall(head + b"Content-Length: 500\r\n\r\n" + b'{"site_id": ')
    answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert answer.endswith(b'{"error":"Request body timeout.","details":[]}'), answer
    accepts_an_event(live)


def test_a_malformed_request_is_answered_400_in_the_error_shape(
    live: HitstreamProcess, sockets: list[socket.socket]
) -> None:
    """Refusals made below the app (here httptools' parse error) answer as the app does."""
    sock = connect(live)
    sockets.append(sock)
    sock.sendall(b"POST /event HTTP/1.1\r\nHost: x\r\nBad Header\x01: y\r\n\r\n")
    answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"content-type: application/json" in answer.lower()
    assert answer.endswith(b'{"error":"Invalid HTTP request.","details":[]}'), answer
    accepts_an_event(live)


def test_idle_connections_beyond_the_cap_are_closed_and_service_continues(
    live: HitstreamProcess,
) -> None:
    socks = [connect(live) for _ in range(MAX_CONNECTIONS + 50)]
    try:
        for sock in socks:
            sock.settimeout(0.5)

        def closed_now(sock: socket.socket) -> bool:
            try:
                while sock.recv(4096):  # a 408 may come first
                    pass
                return True
            except TimeoutError:
                return False
            except OSError:
                return True

        # The extra ones are closed at once; the held ones at the head deadline (1 s).
        wait_for(
            lambda: True if all(closed_now(s) for s in socks) else None,
            timeout=15,
            what="every idle connection to be closed",
        )
        accepts_an_event(live)
        assert httpx.get(live.base_url + "/health", timeout=5).status_code == 200
    finally:
        for sock in socks:
            sock.close()
    assert "over 100 connections: closing a new one" in live.log_path.read_text()

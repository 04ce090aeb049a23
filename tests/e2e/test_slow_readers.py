"""Readers that do not read, and queries whose client left, on a live `serve`: they must
not take what other clients' queries, the consumer or /health need."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.helpers import ADMIN, HitstreamProcess, copy_data_dir, seed_data_dir, wait_for

pytestmark = pytest.mark.e2e

# One site of 150,000 distinct long paths (a CSV breakdown of about 35 MB, far more than
# the socket buffers between a server and a client that reads nothing hold), and the
# events of the last hour, so yesterday and today hold them.
SEED = (
    "INSERT INTO events (event_id, site_id, event_type, path, ts, received_at, visitor_id)"
    " SELECT generateUUIDv4(number), 'big', 'pageview',"
    " concat('/', repeat('p', 200), '/', toString(number)),"
    " now64(3) - toIntervalSecond(number % 3600), now64(3), number + 1"
    " FROM numbers(150000)"
)
SLOW_READERS = 4
SMALL_EVENT = {"site_id": "small", "event_type": "page_view", "path": "/a"}
TODAY = datetime.now(UTC).date()
CSV_QUERY = {"site_id": "big", "date_range": [str(TODAY - timedelta(days=1)), str(TODAY)],
             "metrics": ["visitors"], "dimensions": ["event:page"]}  # fmt: skip


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_data_dir(tmp_path_factory.mktemp("slow") / "data", SEED)


@pytest.fixture
def server(seeded: Path, tmp_path: Path) -> Iterator[HitstreamProcess]:
    data = copy_data_dir(seeded, tmp_path)
    env = {
        "HITSTREAM_DATA_DIR": str(data),
        "HITSTREAM_ADMIN_TOKEN": ADMIN,
        "HITSTREAM_SEND_TIMEOUT_S": "4",
        "HITSTREAM_QUERY_TIMEOUT_S": "3",
    }
    process = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    try:
        yield process
    finally:
        process.stop_if_running()


def request(port: int, body: dict[str, object], accept: str = "text/csv") -> socket.socket:
    """POST /api/v2/query on a socket with a small receive window; nothing is read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", port))
    payload = json.dumps(body).encode()
    sock.sendall(
        b"POST /api/v2/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Accept: {accept}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    return sock


def to_the_end(sock: socket.socket) -> int:
    """Read what the socket holds until the server closes it; the bytes read."""
    total = 0
    try:
        while chunk := sock.recv(1 << 16):
            total += len(chunk)
    except ConnectionResetError:
        pass
    return total


def test_readers_that_do_not_read_hold_nothing_others_need_and_are_cut(
    server: HitstreamProcess,
) -> None:
    """Four clients ask for a 35 MB CSV and read none of it. Another site's queries and
    GET /stats answer, an event is written, /health stays ok; each stalled client is cut
    after HITSTREAM_SEND_TIMEOUT_S and the engine clients it held come back."""
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        received = _others_go_on(server, http)
    # Two took the stream readers and were cut mid-answer; the two that waited for a
    # stream reader got one once the first were cut (or a 503 past HITSTREAM_QUERY_WAIT_S).
    assert all(n > 0 for n in received), received
    assert sum(n < 30_000_000 for n in received) >= 2, received
    assert "read none of its answer" in server.log()
    whole = httpx.post(
        f"{server.base_url}/api/v2/query", json=CSV_QUERY, headers={"accept": "text/csv"},
        timeout=60,
    )  # fmt: skip
    assert whole.status_code == 200 and whole.text.count("\n") == 150_001


def _others_go_on(server: HitstreamProcess, http: httpx.Client) -> list[int]:
    """While SLOW_READERS clients stall: others' reads and writes; the bytes each stalled
    client got before the server closed it."""
    assert http.post("/event", json=SMALL_EVENT).status_code == 202
    stalled = [request(server.port, CSV_QUERY) for _ in range(SLOW_READERS)]
    try:
        # The first stream readers are taken and their answers fill the sockets.
        time.sleep(1.0)  # not a condition: the stalled clients simply read nothing meanwhile
        started = time.monotonic()
        cheap = http.post(
            "/api/v2/query",
            json={"site_id": "small", "date_range": "day", "metrics": ["pageviews"]},
        )
        assert cheap.status_code == 200 and cheap.json()["results"][0]["metrics"] == [1]
        assert http.get("/stats", params={"site_id": "small"}).status_code == 200
        assert http.get("/health").status_code == 200
        assert time.monotonic() - started < 5, "answered while the slow readers stall"
        assert http.post("/event", json={**SMALL_EVENT, "path": "/b"}).status_code == 202

        def written() -> bool | None:
            got = http.get("/stats", params={"site_id": "small"}).json()["total_views"]
            return True if got == 2 else None

        wait_for(written, timeout=15, what="an event written while readers stall")
        # Read only once the server has cut a stalled client: reading earlier would
        # empty a socket the server is still waiting on (the write can land in 2 s).
        wait_for(
            lambda: True if "read none of its answer" in server.log() else None,
            timeout=30,
            what="a stalled client cut",
        )
        return [to_the_end(sock) for sock in stalled]
    finally:
        for sock in stalled:
            sock.close()


def test_a_query_whose_client_left_is_stopped_and_its_reader_freed(
    server: HitstreamProcess,
) -> None:
    """Clients that send a costly query and leave: the server notices, stops their
    queries (a server KILLs them; the embedded engine stops them at the time limit), and
    every reader is free again for the next query."""
    costly = {**CSV_QUERY, "metrics": ["visitors", "pageviews"]}
    for _ in range(6):  # more than the readers
        request(server.port, costly, accept="application/json").close()
    wait_for(
        lambda: True if server.log().count("the client left") >= 4 else None,
        timeout=30,
        what="the server to notice the clients left",
    )
    answer = httpx.post(
        f"{server.base_url}/api/v2/query",
        json={"site_id": "big", "date_range": "day", "metrics": ["visitors"]},
        timeout=15,
    )
    assert answer.status_code == 200 and answer.json()["results"][0]["metrics"][0] > 0

"""Exports' bounds (reporting/exportlimits.py): how many at once, how long a reader may
hold one, the disk Parquet's files take, and the files a killed `serve` left."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from foundation.settings import Settings
from tests.helpers import ADMIN, AUTH, HitstreamProcess, copy_data_dir, seed_data_dir, wait_for

# Random paths and visitors: a Parquet file of about 18 MB, far more than the socket
# buffers between a server and a client that reads nothing hold (a few MB).
SEED = (
    "INSERT INTO events (event_id, site_id, event_type, path, ts, received_at, visitor_id)"
    " SELECT generateUUIDv4(number), 'big', 'pageview', concat('/p/', toString(rand64(number))),"
    " now64(3) - toIntervalSecond(number % 86400), now64(3), rand64(number)"
    " FROM numbers(400000)"
)
EXPORT = "/api/sites/big/export?from=2000-01-01&to=2099-12-31"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with a big site's events, copied by each test that starts `serve`."""
    return seed_data_dir(tmp_path_factory.mktemp("seeded") / "data", SEED)


@pytest.fixture
def serve(seeded: Path, tmp_path: Path) -> Iterator[Callable[..., HitstreamProcess]]:
    """`serve` on a copy of the seeded data dir, with the given extra settings."""
    data = copy_data_dir(seeded, tmp_path)
    started: list[HitstreamProcess] = []

    def start(**env: str) -> HitstreamProcess:
        full = {"HITSTREAM_DATA_DIR": str(data), "HITSTREAM_ADMIN_TOKEN": ADMIN, **env}
        server = HitstreamProcess("serve", full, tmp_path / "serve.log").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop_if_running()


def stalled(server: HitstreamProcess, fmt: str) -> tuple[socket.socket, int | None]:
    """An export whose reader takes the response's head, then reads nothing; the socket
    and the declared length."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader's small window
    sock.settimeout(60)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        f"GET {EXPORT}&format={fmt} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {ADMIN}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        got = sock.recv(1)
        assert got, f"closed before the head: {head!r}"
        head += got
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(
        (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
         if line.startswith(b"content-length:")),
        None,
    )  # fmt: skip
    return sock, length


def files(data: Path) -> list[Path] | None:
    """The export files in a data dir; None when there are none (for wait_for)."""
    found = sorted((data / "exports").glob("*"))
    return found or None


def drained(sock: socket.socket) -> int:
    """Read a socket to its end; the body bytes it held after the head."""
    total = 0
    while chunk := sock.recv(1 << 16):
        total += len(chunk)
    return total


@pytest.mark.e2e
def test_a_reader_that_stops_reading_is_cut_and_its_file_removed(
    serve: Callable[..., HitstreamProcess], tmp_path: Path
) -> None:
    server = serve(HITSTREAM_EXPORT_TIMEOUT_S="3")
    sock, length = stalled(server, "parquet")
    with sock:
        assert length and length > 10 << 20
        assert files(tmp_path / "data"), "the export's file, while it is being sent"
        wait_for(lambda: None if files(tmp_path / "data") else True, timeout=30,
                 what="the stalled export's file to be removed")  # fmt: skip
        assert drained(sock) < length  # cut: a broken download, not a short file
    assert "export cut after 3.0s" in server.log()
    assert httpx.get(server.base_url + "/health").status_code == 200


@pytest.mark.e2e
def test_a_sigkilled_serve_leaves_export_files_that_the_next_start_removes(
    serve: Callable[..., HitstreamProcess], tmp_path: Path
) -> None:
    server = serve()
    sock, _ = stalled(server, "parquet")
    with sock:
        left = wait_for(lambda: files(tmp_path / "data"), what="the export's file")
        server.stop(signal.SIGKILL)
    assert all(path.exists() for path in left)
    serve()  # started: /health answers
    assert files(tmp_path / "data") is None


@pytest.mark.e2e
def test_at_most_two_exports_run_at_once(serve: Callable[..., HitstreamProcess]) -> None:
    server = serve()
    first, _ = stalled(server, "ndjson")
    second, _ = stalled(server, "parquet")
    with first, second:
        third = httpx.get(server.base_url + EXPORT, headers=AUTH)
        assert third.status_code == 429, third.text
        assert int(third.headers["retry-after"]) > 0
        assert third.json()["details"][0]["field"] == "export"
        assert httpx.get(server.base_url + "/health").status_code == 200  # the rest answers
    # The readers gone, their slots are free again.

    def accepted() -> bool | None:
        with httpx.stream("GET", server.base_url + EXPORT, headers=AUTH) as answer:
            return True if answer.status_code == 200 else None

    wait_for(accepted, timeout=30, what="an export slot")


def test_a_parquet_export_is_refused_while_export_files_pass_their_cap(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(admin_token=ADMIN, export_max_bytes="1MiB")
    app = make_client(settings)
    params = {"from": "2026-01-01", "to": "2026-01-02", "format": "parquet"}
    assert app.get("/api/sites/s/export", params=params, headers=AUTH).status_code == 200
    # What a running export's file takes (the directory was emptied at start).
    (settings.data_dir / "exports").mkdir(mode=0o700, exist_ok=True)
    (settings.data_dir / "exports" / "export-running.parquet").write_bytes(b"x" * (1 << 20))
    refused = app.get("/api/sites/s/export", params=params, headers=AUTH)
    assert refused.status_code == 503, refused.text
    assert "HITSTREAM_EXPORT_MAX_BYTES" in refused.json()["details"][0]["message"]
    assert "retry-after" in refused.headers
    ndjson = app.get("/api/sites/s/export", params={**params, "format": "ndjson"}, headers=AUTH)
    assert ndjson.status_code == 200  # streamed formats use no disk

"""Another local user can neither reach the embedded Valkey nor read the data dir."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import redis

from tests.helpers import HitstreamProcess, event

pytestmark = pytest.mark.e2e

# Run as the other user with the system's Python (the virtualenv may not be readable).
CONNECT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    s.sendall(b"*1\\r\\n$4\\r\\nPING\\r\\n")
    print(s.recv(64))
except OSError as exc:
    print(type(exc).__name__)
    sys.exit(13)
"""


@pytest.fixture
def world_readable_parent() -> Iterator[Path]:
    """A parent dir anyone may enter, as a home or /srv would be (pytest's tmp is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="hitstream-perm-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, check=False
    )


def test_serve_keeps_valkey_and_the_data_dir_private(world_readable_parent: Path) -> None:
    data = world_readable_parent / "data"
    log = world_readable_parent / "serve.log"
    server = HitstreamProcess("serve", {"HITSTREAM_DATA_DIR": str(data)}, log).start()
    try:
        assert httpx.post(server.base_url + "/event", json=event("private")).status_code == 202
        url = (data / "valkey.url").read_text().strip()
        assert url.startswith("unix://")
        socket_path = url.removeprefix("unix://")
        conn = redis.Redis.from_url(url)
        assert conn.config_get("port") == {"port": "0"}, "Valkey must not listen on TCP"
        assert conn.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert int(conn.config_get("maxmemory")["maxmemory"]) > 0
        conn.close()
        aof = next((data / "valkey" / "appendonlydir").glob("*.incr.aof"))

        # Every file hitstream or its engines created is its owner's only.
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for path in [data, *data.rglob("*")]:
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:  # a temporary part the engine just removed
                continue
            if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode):
                continue
            assert stat.S_IMODE(mode) & 0o077 == 0, f"{path} is shared"

        if os.geteuid() == 0:
            connect = as_nobody("/usr/bin/python3", "-c", CONNECT, socket_path)
            assert connect.returncode == 13, connect.stdout + connect.stderr
            assert "PermissionError" in connect.stdout
            listing = as_nobody("ls", str(data))
            assert listing.returncode != 0 and "Permission denied" in listing.stderr
            for secret in (aof, data / "valkey.url", data / "admin_token"):
                read = as_nobody("cat", str(secret))
                assert read.returncode != 0 and "Permission denied" in read.stderr, secret
    finally:
        assert server.stop() == 0, server.log()


def test_an_existing_shared_data_dir_is_made_private(world_readable_parent: Path) -> None:
    """A data dir an older version left 0755 with 0644 files is tightened at start."""
    data = world_readable_parent / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    old = data / "admin_token"
    old.write_text("old-token")
    old.chmod(0o644)
    log = world_readable_parent / "serve.log"
    server = HitstreamProcess("serve", {"HITSTREAM_DATA_DIR": str(data)}, log).start()
    try:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE(old.stat().st_mode) == 0o600
    finally:
        assert server.stop() == 0, server.log()

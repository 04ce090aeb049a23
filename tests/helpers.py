"""Helpers shared by the tests: event builders, plus the process helpers in foundation.testing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from foundation.keys import RedisKeys
from foundation.testing import HitstreamProcess, free_port, wait_drained, wait_for, wait_stats
from ingest.encode import encode
from schemas import entry
from schemas.event import EventIn

__all__ = [
    "ADMIN",
    "AUTH",
    "D0",
    "D1",
    "DEFAULT_KEYS",
    "HitstreamProcess",
    "create_site",
    "event",
    "free_port",
    "poll_stats",
    "post_batches",
    "row_of",
    "stream_entry",
    "wait_drained",
    "wait_for",
]

# The keys of a deployment on the default prefix (what `hitstream serve` uses).
DEFAULT_KEYS = RedisKeys("hitstream:")

# Two consecutive recent UTC days, well inside the raw retention that ingest enforces
# (events older than HITSTREAM_RAW_TTL_DAYS, or from the future, are refused).
_RECENT = datetime.now(UTC).date() - timedelta(days=3)
D0 = _RECENT.isoformat()
D1 = (_RECENT + timedelta(days=1)).isoformat()


# The admin token of the tests' apps that have one, and the header that sends it.
ADMIN = "test-admin-token-7c3e9a1f5b"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def create_site(app: TestClient, name: str = "My Website", **extra: Any) -> dict[str, Any]:
    """POST /api/sites as the admin; the created site with its key."""
    response = app.post("/api/sites", json={"name": name, **extra}, headers=AUTH)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def event(site_id: str, path: str = "/", **fields: Any) -> dict[str, Any]:
    """A valid page-view event with overridable fields."""
    return {"site_id": site_id, "event_type": "page_view", "path": path, **fields}


def poll_stats(
    client: TestClient,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 20.0,
    **params: str,
) -> dict[str, Any]:
    """Poll the app's GET /stats until `until` holds for the answer, or fail at the deadline."""
    return wait_stats(client.get, until, timeout, **params)


def post_batches(client: TestClient, batch: list[dict[str, Any]], times: int) -> None:
    """POST /events `times` times; each must be accepted."""
    for _ in range(times):
        response = client.post("/events", json=batch)
        assert response.status_code == 202, response.text


def row_of(body: dict[str, Any]) -> bytes:
    """The stream row ingest would write for this event body."""
    return encode([EventIn.model_validate(body)], datetime.now(UTC))[0].row


def stream_entry(body: dict[str, Any], client_id: bool = False) -> dict[bytes, bytes]:
    """A stream entry exactly as ingest writes it (schemas/entry.py)."""
    return entry.fields(row_of(body), client_id)


# Migrates the embedded engine of $HITSTREAM_DATA_DIR and runs the SQL given as argv[1]:
# a subprocess, since this process may open only its own chdb path.
_SEED = """
import sys
from hitstream.connections import clickhouse_client
from foundation.settings import Settings
from schemas.migrate import migrate
settings = Settings()
client = clickhouse_client(settings)
migrate(client, settings.raw_ttl_days)
client.command(sys.argv[1])
"""


def seed_data_dir(data: Path, insert: str, timeout: float = 120) -> Path:
    """A data dir (made private if new) whose engine holds what `insert` writes, for the
    `serve` of a test to start on; returns it."""
    data.mkdir(mode=0o700, exist_ok=True)
    env = {"HITSTREAM_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", _SEED, insert], env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return data


def copy_data_dir(seeded: Path, into: Path) -> Path:
    """A copy of a seeded data dir for one test's `serve` (tests never share one)."""
    data = into / "data"
    subprocess.run(["cp", "-a", str(seeded), str(data)], check=True)
    return data

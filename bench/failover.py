"""Failover figures: SIGKILL the master of a shard while two sites send events, one on
that master's shard and one on another master's; the promotion, each site's answers and
longest wait, when the consumer counts an event accepted after the promotion, /health,
and the totals. `python -m bench.failover [runs]` (not part of `make bench`).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from foundation.settings import Settings
from foundation.testcluster import ValkeyCluster
from hitstream.app import create_app

TOKEN = "bench-admin-token-0123456789"
DAY = datetime.now(UTC).date().isoformat()


def _event(site: str, n: int) -> dict[str, Any]:
    return {
        "site_id": site,
        "event_type": "page_view",
        "path": f"/{n}",
        "timestamp": f"{DAY}T00:00:00Z",
    }


def _views(app: TestClient, site: str) -> int:
    return int(app.get("/stats", params={"site_id": site, "date": DAY}).json()["total_views"])


def run_once(cluster: ValkeyCluster, tmp: Path, run: int) -> str:
    data = tmp / f"data-{run}"
    data.mkdir(mode=0o700)
    settings = Settings(
        redis_url=cluster.url,
        clickhouse_url=f"chdb://{tmp / 'ch'}",
        clickhouse_database=f"failover{run}",
        redis_prefix=f"failover{run}:",
        data_dir=data,
        stream_shards=16,
        consumer_stall_s=2.0,
        admin_token=TOKEN,
    )
    keys = settings.keys
    site = "killed-site"
    master = cluster.master_for_key(keys.shard_for(site).stream)
    other = next(
        f"other-{n}" for n in range(1000)
        if cluster.master_for_key(keys.shard_for(f"other-{n}").stream).port != master.port
    )  # fmt: skip
    lines = []
    with TestClient(create_app(settings)) as app:
        log: dict[str, list[tuple[float, int]]] = {site: [], other: []}
        stop = threading.Event()

        def send(target: str) -> None:
            n = 0
            while not stop.is_set():
                answer = app.post("/event", json=_event(target, n))
                log[target].append((time.monotonic(), answer.status_code))
                n += 1
                time.sleep(0.005)

        senders = [threading.Thread(target=send, args=(t,)) for t in (site, other)]
        for sender in senders:
            sender.start()
        time.sleep(2)
        killed = time.monotonic()
        cluster.kill(master)
        promoted = cluster.wait_promoted(cluster.slot(keys.shard_for(site).stream))
        while not any(t > killed + promoted and c == 202 for t, c in log[site]):
            time.sleep(0.01)
        mark = sum(1 for t, c in log[site] if c == 202 and t <= killed + promoted) + 1
        counted, health = None, []
        while time.monotonic() - killed < 15:
            if counted is None and _views(app, site) >= mark:
                counted = time.monotonic() - killed
            health.append((time.monotonic() - killed, app.get("/health").status_code))
            time.sleep(0.05)
        stop.set()
        for sender in senders:
            sender.join()
        unhealthy = [t for t, c in health if c != 200]
        lines.append(
            f"run {run}: promoted {promoted:.2f}s; a post-promotion event counted at "
            f"{counted or 0:.2f}s; /health 503 {min(unhealthy, default=0):.2f}-"
            f"{max(unhealthy, default=0):.2f}s"
        )
        for target in (site, other):
            accepted = sum(1 for _, c in log[target] if c == 202)
            deadline = time.monotonic() + 60
            while _views(app, target) != accepted and time.monotonic() < deadline:
                time.sleep(0.2)
            refused = [t - killed for t, c in log[target] if c != 202]
            waits = [b[0] - a[0] for a, b in zip(log[target], log[target][1:], strict=False)]
            lines.append(
                f"  {target}: {dict(Counter(c for _, c in log[target]))}, 503s "
                f"{min(refused, default=0):.2f}-{max(refused, default=0):.2f}s, longest wait "
                f"{max(waits):.2f}s, counted {_views(app, target)} of {accepted}"
            )
    cluster.restart(master)
    return "\n".join(lines)


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with ValkeyCluster(tmp / "valkey") as cluster:
            for run in range(runs):
                print(run_once(cluster, tmp, run), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)

"""The cluster row: events/s end to end and server CPU per event on a Valkey Cluster of
one master against three, with the same 16 stream shards and the same processes (one
`hitstream ingest`, one `hitstream consume`), in one run.

End to end: from the first request of a k6 run (100 events of one site per request, the
sites taken in turn) to the last of its events written to ClickHouse. CPU: the seconds
the processes used (ingest, consume, every Valkey node; from /proc), divided by the
events. Two cores run all of it and k6, so more masters cannot show more capacity here:
the row shows what the shards cost and that they spread.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.cluster import RedisCluster

from bench import k6run
from hitstream.settings import Settings
from hitstream.testcluster import ValkeyCluster
from hitstream.testing import HitstreamProcess, wait_for

SHARDS = 16
PREFIX = "bench:"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds the processes used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def _written(conn: RedisCluster, settings: Settings) -> tuple[int, int]:
    """Entries added to every shard, and acknowledged by the group."""
    added = acked = 0
    for shard in settings.keys.all_shards:
        if not conn.exists(shard.stream):
            continue
        info: Any = conn.xinfo_stream(shard.stream)
        groups: Any = conn.xinfo_groups(shard.stream)
        added += int(info["entries-added"])
        if groups:
            acked += int(groups[0]["entries-read"] or 0) - int(groups[0]["pending"])
    return added, acked


def run_once(masters: int, workdir: Path, duration: str) -> dict[str, float]:
    """One k6 run into a cluster of `masters` masters; events/s end to end, CPU ms/event."""
    with ValkeyCluster(workdir / "valkey", masters=masters, replicas=0) as cluster:
        env = {
            "HITSTREAM_REDIS_URL": cluster.url,
            "HITSTREAM_CLICKHOUSE_URL": f"chdb://{workdir / 'ch'}",
            "HITSTREAM_STREAM_SHARDS": str(SHARDS),
            "HITSTREAM_REDIS_PREFIX": PREFIX,
            "HITSTREAM_RATE_LIMIT_IP_PER_S": "0",
            "HITSTREAM_RATE_LIMIT_KEY_PER_S": "0",
            "HITSTREAM_BACKLOG_HIGH_WATER": "100000000",
        }
        settings = Settings(redis_url=cluster.url, stream_shards=SHARDS, redis_prefix=PREFIX)
        ingest = HitstreamProcess("ingest", env, workdir / "ingest.log").start()
        consume = HitstreamProcess("consume", env, workdir / "consume.log").start()
        conn = RedisCluster.from_url(cluster.url)
        try:
            assert ingest.proc is not None and consume.proc is not None
            pids = [ingest.proc.pid, consume.proc.pid, *(n.pid for n in cluster.nodes)]
            cpu = cpu_seconds(pids)
            started = time.perf_counter()
            metrics = k6run.run(
                "sites.js", {"BASE": ingest.base_url, "DURATION": duration, "VUS": "16"}, 0
            )
            failed, total = k6run.failed_checks(metrics)
            events = _written(conn, settings)[0]
            wait_for(
                lambda: True if _written(conn, settings)[1] == events else None,
                timeout=600,
                interval=0.05,
                what="every event written",
            )
            seconds = time.perf_counter() - started
            cpu = cpu_seconds(pids) - cpu
            spread = {cluster.master_for_key(s.stream).port for s in settings.keys.all_shards}
        finally:
            conn.close()
            ingest.stop()
            consume.stop()
        assert failed == 0, f"{failed} of {total} requests refused"
        assert len(spread) == masters, "every master carries shards"
    return {
        "events": events,
        "events_per_s": events / seconds,
        "cpu_ms_per_event": cpu * 1000 / events,
    }


def run(runs: int = 3, duration: str = "10s") -> dict[str, Any]:
    """Medians of `runs` runs on 1 master and on 3 masters, the runs interleaved."""
    found: dict[int, list[dict[str, float]]] = {1: [], 3: []}
    for _ in range(runs):
        for masters in found:
            with tempfile.TemporaryDirectory() as tmp:
                found[masters].append(run_once(masters, Path(tmp), duration))
    result: dict[str, Any] = {"cluster_shards": SHARDS}
    for masters, measured in found.items():
        result[f"cluster_{masters}m_events_per_s"] = round(
            statistics.median(m["events_per_s"] for m in measured)
        )
        result[f"cluster_{masters}m_cpu_ms_per_event"] = round(
            statistics.median(m["cpu_ms_per_event"] for m in measured), 4
        )
        result[f"cluster_{masters}m_runs"] = [
            {k: round(v, 4) for k, v in m.items()} for m in measured
        ]
    return result


if __name__ == "__main__":
    print(run(runs=int(sys.argv[1]) if len(sys.argv) > 1 else 1, duration="5s"))

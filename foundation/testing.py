"""Process and polling helpers for tests and benchmarks: real `hitstream` processes, deadlines."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis

T = TypeVar("T")


def wait_for(
    attempt: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call `attempt` until it returns something other than None; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = attempt()
        except AssertionError as exc:
            result, last = None, exc
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last}")
        time.sleep(interval)


def wait_drained(
    conn: redis.Redis, stream: str, group: str, entries: int | None = None, timeout: float = 60.0
) -> None:
    """Wait until `group` has nothing pending and, if given, has read `entries` entries."""

    def done() -> bool | None:
        groups: Any = conn.xinfo_groups(stream)
        mine = next((g for g in groups if g["name"].decode() == group), None)
        if mine is None or mine["pending"]:
            return None
        return True if entries is None or (mine["entries-read"] or 0) >= entries else None

    wait_for(done, timeout=timeout, what=f"group {group} to read and acknowledge everything")


def wait_stats(
    get: Callable[..., Any],
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
    **params: str,
) -> dict[str, Any]:
    """Poll GET /stats through `get` (an HTTP client's get) until `until` holds."""

    def attempt() -> dict[str, Any] | None:
        response = get("/stats", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if until(body):
            return body
        raise AssertionError(f"last answer: {body}")

    return wait_for(attempt, timeout=timeout, what=f"/stats {params}")


def memory_mb(pid: int, field: str) -> float:
    """A /proc/<pid>/status figure in MB: VmRSS, VmHWM (peak RSS) or RssAnon (private)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_pids(pid: int) -> set[int]:
    """The process's children, whichever of its threads started them (from /proc)."""
    return {
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HitstreamProcess:
    """A `hitstream <command>` subprocess with its own environment, log file and port."""

    def __init__(
        self, command: str, env: dict[str, str], log_path: Path, wrapper: tuple[str, ...] = ()
    ) -> None:
        self.port = int(env.get("HITSTREAM_PORT") or free_port())
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        clean = {k: v for k, v in os.environ.items() if not k.startswith("HITSTREAM_")}
        self._env = {**clean, **env, "HITSTREAM_PORT": str(self.port)}
        # `wrapper` runs first and is handed the rest: a script ending with `exec "$@"`
        # (e.g. to set up a mount namespace), or a Python module of the tests' own.
        self._command = [*wrapper, str(Path(sys.executable).with_name("hitstream")), command]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0, wait: bool = True) -> HitstreamProcess:
        """Start the process and (with `wait`) wait until its /health answers 200."""
        with open(self.log_path, "ab") as log:
            # Its own process group, as a shell runs a job: ctrl_c() signals all of it.
            self.proc = subprocess.Popen(
                self._command, env=self._env, stdout=log, stderr=subprocess.STDOUT, process_group=0
            )
        if not wait:
            return self

        def healthy() -> bool | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as response:
                    return True if response.status == 200 else None
            except OSError:  # refused, reset, or an HTTP error status (URLError is an OSError)
                return None

        wait_for(healthy, timeout=timeout, interval=0.1, what=f"{self._command[-1]} /health")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send `sig` and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def ctrl_c(self, timeout: float = 60.0) -> int:
        """What Ctrl-C in a terminal does: SIGINT to the whole process group; the exit code."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def stop_if_running(self) -> None:
        """For a test's `finally`: stop the process if a failure left it running."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the process to exit by itself; return its exit code."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

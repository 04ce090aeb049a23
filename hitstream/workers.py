"""Several processes serving one port: `hitstream ingest --workers N`.

The parent binds the socket, then forks N workers that each run the whole server on it
(the kernel hands each connection to one of them, as gunicorn's and uvicorn's workers
share a socket). The parent serves nothing: it passes SIGTERM/SIGINT on, starts a new
worker when one dies, and returns once every worker has stopped. What must be exact
across workers already lives in Redis (salts, visits, rate limits, the stream); the
Prometheus counts are summed through one directory the workers share (`share_counts`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from foundation.metrics import MULTIPROC_DIR, share_counts

log = logging.getLogger("hitstream.workers")

# A worker that could not start (lifespan failed: the reason is in its log) exits with
# this; the parent then stops the others instead of starting it again and again.
START_FAILED = 3
# Shortest time between two starts of one worker slot: a crash loop costs little CPU.
RESTART_PAUSE_S = 1.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
COUNTS_PREFIX = "hitstream-metrics-"


def supervise(count: int, serve: Callable[[], int]) -> int:
    """Run `serve` in `count` forked workers until they stop; the exit code to return:
    0 after a graceful stop, START_FAILED when a worker could not start."""
    made = None
    if not os.environ.get(MULTIPROC_DIR):
        _sweep_stale_counts()
        # Private (mode 0700); named after this process, so a later start can tell a
        # directory left by a parent that was killed.
        made = tempfile.mkdtemp(prefix=f"{COUNTS_PREFIX}{os.getpid()}-")
        share_counts(made)
    workers: dict[int, int] = {}  # pid -> slot
    started: dict[int, float] = {}  # slot -> when its worker last started
    stopping: list[int] = []  # the signal, once one came

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for pid in workers:
            _signal(pid, signum)

    def start(slot: int) -> None:
        pause = started.get(slot, 0.0) + RESTART_PAUSE_S - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        started[slot] = time.monotonic()
        # A stop signal between fork and here would run the parent's handler in the
        # worker (or miss the new pid in the parent): held back until both are set.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        if stopping:  # the stop came during the pause: no new worker
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            return
        pid = os.fork()
        if pid == 0:
            for each in STOP_SIGNALS:
                signal.signal(each, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            _stop_with_parent()
            os._exit(_run(serve))  # never back into the parent's frames
        workers[pid] = slot
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    for each in STOP_SIGNALS:
        signal.signal(each, stop)
    try:
        for slot in range(count):
            start(slot)
        log.info("%d workers serving (pids %s)", count, " ".join(map(str, workers)))
        return _wait(workers, stopping, start)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _wait(workers: dict[int, int], stopping: list[int], start: Callable[[int], None]) -> int:
    """Reap workers until none is left, starting a new one for each that died."""
    result = 0
    while workers:
        pid, status = os.wait()
        slot = workers.pop(pid, None)
        if slot is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            result = max(result, code if code > 0 else 0)
        elif code == START_FAILED:
            log.error("worker %d (pid %d) could not start: stopping the others", slot, pid)
            stopping.append(signal.SIGTERM)
            for other in workers:
                _signal(other, signal.SIGTERM)
            result = START_FAILED
        else:
            log.warning("worker %d (pid %d) exited (%d): starting another", slot, pid, code)
            start(slot)
    return result


def _run(serve: Callable[[], int]) -> int:
    """A worker's life: serve's exit code; an exception before it could serve is logged
    with its traceback and counts as a failed start (not started again)."""
    try:
        return serve()
    except BaseException:
        log.exception("worker %d could not run", os.getpid())
        return START_FAILED
    finally:
        logging.shutdown()  # flush: os._exit skips it


def _sweep_stale_counts() -> None:
    """Remove the metrics directories of earlier parents of this user that were killed
    before they could (SIGKILL): named after a pid that is no longer running."""
    for stale in Path(tempfile.gettempdir()).glob(f"{COUNTS_PREFIX}*-*"):
        pid = stale.name.removeprefix(COUNTS_PREFIX).split("-", 1)[0]
        try:
            if not pid.isdigit() or stale.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)


def _stop_with_parent() -> None:
    """Linux: this worker gets SIGTERM when the parent dies, even by SIGKILL, rather than
    serving on alone (prctl PR_SET_PDEATHSIG); the parent may be gone already."""
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone: os.wait() says so
        os.kill(pid, signum)

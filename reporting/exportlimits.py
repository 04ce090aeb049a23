"""What bounds exports in one process: how many run at once, how long each may last, and
the disk the embedded engine's Parquet files (DATA_DIR/exports) may take.

Each export holds an engine client for as long as its reader reads, and a Parquet
export a file the size of its answer: without bounds a page that makes a logged-in
admin's browser fetch exports, or a reader that stops reading, holds them for good.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import anyio
from anyio import to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from foundation.http import APIError
from foundation.settings import Settings

log = logging.getLogger(__name__)

# Exports running at once per process: an admin's few downloads, never a flood of them.
MAX_AT_ONCE = 2
# When a refused export may be asked again: running exports take minutes, not seconds.
RETRY_AFTER_S = 30
EXPORTS_DIR = "exports"
FILE_PREFIX = "export-"


class ExportLimits:
    """The running exports of this process, their deadline and their files' disk."""

    def __init__(
        self, directory: Path | None, timeout_s: float, max_bytes: int, at_once: int = MAX_AT_ONCE
    ) -> None:
        self.directory = directory
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.at_once = at_once
        self.running = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ExportLimits:
        """Files in the data dir only with the embedded engine (a server streams Parquet)."""
        embedded = settings.embedded_clickhouse
        directory = settings.data_dir / EXPORTS_DIR if embedded else None
        return cls(directory, settings.export_timeout_s, int(settings.export_max_bytes))

    def clear(self) -> int:
        """At start: remove what exports of an earlier process left (it was killed, or its
        files outlived it); the number of files removed."""
        if self.directory is None:
            return 0
        self.directory.mkdir(mode=0o700, exist_ok=True)
        removed = 0
        for path in self.directory.glob(f"{FILE_PREFIX}*"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def take(self) -> None:
        """Count an export in, or refuse it (429) while MAX_AT_ONCE run."""
        if self.running >= self.at_once:
            raise APIError(
                429,
                f"{self.at_once} exports are running; try again when one ends",
                [{"field": "export", "message": f"at most {self.at_once} at once"}],
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.running += 1

    def give_back(self) -> None:
        self.running -= 1

    def used_bytes(self) -> int:
        """What the export files take now (those being written included)."""
        if self.directory is None:
            return 0
        total = 0
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
        return total

    def new_file(self) -> Path:
        """A private, empty file for a Parquet export; 503 while the export files already
        take HITSTREAM_EXPORT_MAX_BYTES (a running export may pass it; the next waits)."""
        assert self.directory is not None
        self.directory.mkdir(mode=0o700, exist_ok=True)
        used = self.used_bytes()
        if used >= self.max_bytes:
            raise APIError(
                503,
                "the export files of running exports fill their disk cap; "
                "try again when they end, or export NDJSON or CSV (they use no disk)",
                [{"field": "format", "message": f"export files take {used} bytes of "
                  f"HITSTREAM_EXPORT_MAX_BYTES={self.max_bytes}"}],
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )  # fmt: skip
        fd, name = tempfile.mkstemp(prefix=FILE_PREFIX, suffix=".parquet", dir=self.directory)
        os.close(fd)
        return Path(name)

    def bounded(self, response: Response, cleanup: Callable[[], None]) -> Response:
        """`response`, cut at the export's deadline; then the export is counted out and
        `cleanup` (close the engine's stream, remove the file) runs, however it ended."""
        return _Bounded(response, self, cleanup)


class _Bounded(Response):
    """A response sent within the limits' deadline. Cut, the connection is closed mid-body
    (the server ends a response its app left unfinished): the client sees a broken
    download, never a short file that looks whole."""

    def __init__(self, inner: Response, limits: ExportLimits, cleanup: Callable[[], None]) -> None:
        self._inner = inner
        self._limits = limits
        self._cleanup = cleanup
        self.status_code = inner.status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with anyio.move_on_after(self._limits.timeout_s) as deadline:
                await self._inner(scope, receive, send)
            if deadline.cancelled_caught:
                log.warning(
                    "export cut after %ss (HITSTREAM_EXPORT_TIMEOUT_S): its reader was too slow",
                    self._limits.timeout_s,
                )
        finally:
            self._limits.give_back()
            # Shielded: a cancelled request (shutdown, disconnect) still lets go of both.
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(self._cleanup)

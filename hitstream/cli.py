"""The `hitstream` command: serve, the three roles as separate processes, and migrate."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

import uvicorn
from pydantic import ValidationError

from consumers.deadletter import DeadLetters
from hitstream.app import ALL_ROLES, Role, create_app
from hitstream.connections import (
    clickhouse_client,
    close_quietly,
    embedded_redis_url,
    redis_client,
)
from hitstream.errors import HitstreamError
from hitstream.server import connection_cap, guarded_protocol, raise_fd_limit
from hitstream.settings import Settings
from schemas.migrate import migrate, rollback

log = logging.getLogger("hitstream")

ROLE_COMMANDS = {
    "serve": (ALL_ROLES, "all-in-one: ingest + reporting routes and the consumer group"),
    "ingest": (frozenset({Role.INGEST}), "POST /event(s) only (needs HITSTREAM_REDIS_URL)"),
    "consume": (frozenset({Role.CONSUME}), "a consumer in the group, /health only"),
    "report": (frozenset({Role.REPORT}), "GET /stats only"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hitstream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in ROLE_COMMANDS.items():
        commands.add_parser(name, help=help_text)
    migrate_cmd = commands.add_parser("migrate", help="apply the ClickHouse schema migrations")
    migrate_cmd.add_argument(
        "--to", type=int, default=None, help="roll back to this version instead (0 drops all)"
    )
    dlq = commands.add_parser("dlq", help="inspect and re-inject dead-lettered events")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_commands.add_parser("list", help="print dead letters as JSON lines")
    listing.add_argument("--count", type=int, default=100)
    replay = dlq_commands.add_parser("replay", help="append dead letters to the stream again")
    replay.add_argument("ids", nargs="*", help="dead-letter entry IDs (default: all)")
    return parser


async def _dlq(settings: Settings, args: argparse.Namespace) -> None:
    redis = redis_client(settings.redis_url or embedded_redis_url(settings))
    dead = DeadLetters(redis, settings.keys)
    try:
        if args.dlq_command == "list":
            for entry_id, fields in await dead.list(args.count):
                text = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
                print(json.dumps({"id": entry_id.decode(), **text}))
        else:
            moved = await dead.replay([entry_id.encode() for entry_id in args.ids])
            print(f"replayed {moved} dead letters into {settings.keys.stream}")
    finally:
        await redis.aclose()


def _run_server(settings: Settings, roles: frozenset[Role]) -> None:
    app = create_app(settings, roles)
    fd_limit = raise_fd_limit()
    cap = connection_cap(settings.max_connections, fd_limit)
    log.info("descriptor limit %d; at most %d client connections", fd_limit, cap)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=guarded_protocol(settings.header_timeout_s, settings.body_timeout_s, cap),
        lifespan="on",
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=30,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the stop signal once it has shut down cleanly; these handlers
    # turn that into a normal return, so a graceful SIGTERM/SIGINT exits with status 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    server.run()
    if not server.started:
        # Lifespan start-up failed (the reason is already logged): exit non-zero.
        raise SystemExit(3)


def _migrate(settings: Settings, to_version: int | None) -> None:
    client = clickhouse_client(settings)
    try:
        if to_version is None:
            done = migrate(client, settings.raw_ttl_days)
            print(f"applied: {done or 'nothing, schema is current'}")
        else:
            undone = rollback(client, to_version, settings.raw_ttl_days)
            print(f"rolled back: {undone or 'nothing'}")
    finally:
        close_quietly(client)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `hitstream` console script."""
    args = _parser().parse_args(argv)
    # Every file hitstream (and the Valkey it starts) creates is readable by its owner only.
    os.umask(0o077)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"hitstream: invalid settings:\n{exc}")
    try:
        if args.command == "migrate":
            _migrate(settings, args.to)
        elif args.command == "dlq":
            asyncio.run(_dlq(settings, args))
        else:
            _run_server(settings, ROLE_COMMANDS[args.command][0])
    except HitstreamError as exc:
        sys.exit(f"hitstream: {exc}")


if __name__ == "__main__":
    main()

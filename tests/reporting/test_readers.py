"""The pools of engine clients: one client address holds at most half a pool."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from foundation.http import APIError
from foundation.settings import Settings
from hitstream.connections import clickhouse_client
from reporting.queries import Readers


@pytest.mark.anyio
async def test_one_address_holds_at_most_half_the_readers_and_others_still_get_one(
    schema: Client, settings: Settings
) -> None:
    """A flood from one address (or a dashboard's panels) waits behind its own queries;
    another address's query is lent a client at once."""
    clients = [clickhouse_client(settings) for _ in range(4)]
    try:
        readers = Readers("stats", clients, wait_s=0.3)
        held = [await readers.borrow("203.0.113.1") for _ in range(2)]
        with pytest.raises(APIError) as busy:
            await readers.borrow("203.0.113.1")  # its third waits for its own, then 503
        assert busy.value.status_code == 503
        other = await readers.borrow("198.51.100.2")
        assert readers.idle == 1
        readers.give_back(held.pop())
        again = await readers.borrow("203.0.113.1")  # its own slot came back
        for reader in [*held, other, again]:
            readers.give_back(reader)
        assert readers.idle == readers.size == 4
    finally:
        for client in clients:
            client.close()

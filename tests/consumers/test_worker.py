"""The consumer: idempotent batch inserts, retries while ClickHouse refuses, acks after."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
import redis
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from consumers.sink import ClickHouseSink, batch_token
from foundation.settings import Settings
from tests.helpers import D0, event, wait_for


def rows(n: int, site: str = "s", user: str = "u") -> list[bytes]:
    return [
        orjson.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "site_id": site,
                "event_type": "page_view",
                "path": "/",
                "user_id": user,
                "ts": "2025-09-09 09:09:09.000",
                "received_at": "2025-09-09 09:09:09.000",
            }
        )
        for _ in range(n)
    ]


def day_totals(ch: Client, site: str = "s") -> tuple[int, int]:
    result = ch.query(
        "SELECT sum(views), uniqExactMerge(users) FROM daily_totals WHERE site_id = {s:String}",
        parameters={"s": site},
    ).result_rows[0]
    return int(result[0]), int(result[1])


def test_same_batch_inserted_twice_counts_once(schema: Client) -> None:
    ch = schema
    sink = ClickHouseSink(ch)
    batch = rows(10)
    token = batch_token("stream", [b"1-0", b"1-9"] * 5)
    sink.insert(batch, token)
    sink.insert(batch, token)
    assert day_totals(ch) == (10, 1)
    paths = ch.query("SELECT sum(views) FROM daily_pages WHERE site_id = 's'").result_rows[0][0]
    assert paths == 10


def test_different_batches_with_equal_content_both_count(schema: Client) -> None:
    ch = schema
    """Equal blocks are not mistaken for a redelivery: the token, not the data, decides."""
    sink = ClickHouseSink(ch)
    batch = rows(3)
    sink.insert(batch, batch_token("stream", [b"1-0", b"1-2"]))
    sink.insert(batch, batch_token("stream", [b"2-0", b"2-2"]))
    assert day_totals(ch) == (6, 1)


def test_batch_token_names_the_entries() -> None:
    assert batch_token("s", [b"1-0", b"1-1", b"2-5"]) == "s/1-0/2-5/3"


def test_consumer_retries_while_clickhouse_refuses_then_drains(
    client: TestClient,
    ch: Client,
    settings: Settings,
    redis_conn: redis.Redis,
    stats: Callable[..., dict[str, Any]],
    caplog: Any,
) -> None:
    ch.command("DETACH TABLE events")
    try:
        response = client.post("/events", json=[event("outage", timestamp=f"{D0}T10:00:00Z")] * 40)
        assert response.status_code == 202, "ingest must not depend on ClickHouse"
        wait_for(
            lambda: True if "retrying in" in caplog.text else None,
            what="the consumer to report a failed insert",
        )
        pending = redis_conn.xpending(settings.keys.shard(0).stream, settings.group)["pending"]
        assert pending == 40, "nothing is acknowledged before it is written"
    finally:
        ch.command("ATTACH TABLE events")
    body = stats(lambda b: b["total_views"] == 40, site_id="outage", date=D0)
    assert body["total_views"] == 40
    wait_for(
        lambda: (
            True
            if redis_conn.xpending(settings.keys.shard(0).stream, settings.group)["pending"] == 0
            else None
        ),
        what="the batch to be acknowledged",
    )

"""A read whose answer is lost (timed out under load): its entries are read again at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from consumers.worker import lost_after_ms
from foundation.settings import Settings
from tests.helpers import D0, event, poll_stats, stream_entry, wait_for

LOST = 300


@pytest.mark.slow
def test_entries_of_a_lost_read_are_counted_within_seconds_not_at_the_idle_reclaim(
    client: TestClient,
    settings: Settings,
    redis_conn: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis delivers a batch to the consumer, and the answer never reaches it: the state
    a read leaves when it times out while the process is busy (a burst into `serve`).

    The entries are then pending for this consumer and held by no handler; they are read
    again from its own pending list within seconds, far before `claim_idle_ms` (60 s),
    and no idle reclaim is needed.
    """
    caplog.set_level(logging.INFO, logger="consumers")
    stream, group = settings.keys.shard(0).stream, settings.group
    consumer = settings.consumer_name or ""
    assert settings.claim_idle_ms == 60_000
    # One transaction: the consumer's own reads never see these entries as new.
    with redis_conn.pipeline(transaction=True) as pipe:
        for i in range(LOST):
            pipe.xadd(stream, stream_entry(event("lost", f"/{i}", timestamp=f"{D0}T10:00:00Z")))
        pipe.xreadgroup(group, consumer, {stream: ">"}, count=LOST)
        replies: list[Any] = pipe.execute()
    assert len(replies[-1][0][1]) == LOST  # delivered to the consumer, answer dropped
    assert redis_conn.xpending(stream, group)["pending"] == LOST

    # The entries' read is known lost once it is older than the reads' deadline.
    deadline_s = lost_after_ms(settings) / 1000 + 10
    poll_stats(client, lambda s: s["total_views"] == LOST, deadline_s, site_id="lost", date=D0)
    # Counted before acknowledged: the XACK follows the insert.
    wait_for(lambda: redis_conn.xpending(stream, group)["pending"] == 0 or None, what="acked")
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"read again {LOST} entries whose read was lost" in m for m in messages)
    assert not any("reclaimed" in m for m in messages)


def test_a_batch_in_hand_is_not_taken_for_a_lost_read(
    client: TestClient,
    settings: Settings,
    stats: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ordinary traffic is read once: nothing is 'read again'."""
    caplog.set_level(logging.INFO, logger="consumers")
    for _ in range(5):
        assert client.post("/events", json=[event("steady", "/a")] * 100).status_code == 202
    poll_stats(client, lambda s: s["total_views"] == 500, site_id="steady")
    assert not any("read was lost" in r.getMessage() for r in caplog.records)

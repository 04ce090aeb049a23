"""The queue panel's API through the real app: consumers, dead letters with their errors,
replay, and the insert and drain rates sampled from the stream's counters."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest
import redis
from starlette.testclient import TestClient

from consumers import queue
from foundation.settings import Settings
from hitstream.connections import redis_client
from schemas import entry
from tests.helpers import ADMIN, AUTH, D0, event, poll_stats, wait_for

POISON = b'{"event_id":"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz","site_id":"panel"}'


@pytest.fixture
def panel_settings(make_settings: Callable[..., Settings]) -> Settings:
    # Open mode: the panel is the admin's in every mode, unlike /health/queue.
    return make_settings(admin_token=ADMIN, max_deliveries=2, insert_backoff_initial_s=0.01)


def test_the_panel_is_the_admins_in_every_mode(
    make_client: Callable[..., TestClient], panel_settings: Settings
) -> None:
    app = make_client(panel_settings)
    assert app.get("/health/queue").status_code == 200  # open mode: public
    assert app.get("/api/queue").status_code == 401
    assert app.post("/api/queue/dead-letters/replay", json={}).status_code == 401
    assert app.get("/api/queue", headers=AUTH).status_code == 200


def test_a_dead_letter_is_listed_with_its_error_and_replayed_by_id(
    make_client: Callable[..., TestClient], panel_settings: Settings, redis_conn: redis.Redis
) -> None:
    app = make_client(panel_settings)
    redis_conn.xadd(panel_settings.keys.shard(0).stream, entry.fields(POISON))
    app.post("/event", json=event("panel", "/good", timestamp=f"{D0}T01:00:00Z"))

    def listed() -> list[dict[str, object]] | None:
        letters = app.get("/api/queue", headers=AUTH).json()["dead_letter_list"]
        return letters or None

    letters = wait_for(listed, what="the poison entry among the dead letters")
    poll_stats(app, lambda b: b["total_views"] == 1, site_id="panel", date=D0)
    body = app.get("/api/queue", headers=AUTH).json()
    assert body["dead_letters"] == 1 and len(letters) == 1
    letter = letters[0]
    assert "UUID" in str(letter["error"]) and "after 2 attempts" in str(letter["error"])
    assert int(str(letter["deliveries"])) >= 1
    assert str(letter["row"]).startswith('{"event_id":"zzzzzzzz')
    assert [c["name"] for c in body["consumer_list"]] == [panel_settings.consumer_name]

    for ids in (["x; FLUSHALL"], ["99999999999999999999-0"], "1-0", [1]):
        bad = app.post("/api/queue/dead-letters/replay", json={"ids": ids}, headers=AUTH)
        assert bad.status_code == 400 and bad.json()["details"][0]["field"].startswith("ids")
    unknown = app.post("/api/queue/dead-letters/replay", json={"ids": ["1-0"]}, headers=AUTH)
    assert unknown.json() == {"replayed": 0, "dead_letters": 1}
    done = app.post("/api/queue/dead-letters/replay", json={"ids": [letter["id"]]}, headers=AUTH)
    assert done.status_code == 200 and done.json()["replayed"] == 1
    # Still poison: it fails again and comes back under a new id; the good event stays one.
    again = wait_for(
        lambda: [x for x in (listed() or []) if x["id"] != letter["id"]] or None,
        what="the replayed poison to be dead-lettered again",
    )
    assert len(again) == 1
    poll_stats(app, lambda b: b["total_views"] == 1, site_id="panel", date=D0)


@pytest.mark.anyio
async def test_rates_come_from_consecutive_samples_and_skip_gaps(settings: Settings) -> None:
    conn = redis_client(settings.redis_url or "")
    try:
        every = queue.SAMPLE_INTERVAL_S
        now = int(time.time()) // every * every
        samples = {now - 4 * every: "100 40", now - 3 * every: "300 140", now: "900 1140"}
        for bucket, value in samples.items():
            await conn.set(settings.keys.queue_sample(bucket), value, ex=60)
        rates = await queue.rates(conn, settings)
        # Two samples in a row give a rate; the gap before `now` gives none.
        assert rates == [
            {"at": now - 3 * every, "inserted_per_s": 200 / every, "drained_per_s": 100 / every}
        ]
    finally:
        await conn.aclose()


@pytest.mark.anyio
async def test_counters_read_what_was_added_and_what_the_group_drained(
    make_client: Callable[..., TestClient], panel_settings: Settings
) -> None:
    app = make_client(panel_settings)
    app.post("/events", json=[event("count", f"/{i}") for i in range(5)])
    conn = redis_client(panel_settings.redis_url or "")
    try:

        async def read() -> tuple[int, int] | None:
            return await queue.counters(conn, panel_settings)

        # Polled with a deadline: the app's consumer drains in its own thread.
        got = None
        with anyio.move_on_after(20):
            while (got := await read()) != (5, 5):
                await anyio.sleep(0.05)
        assert got == (5, 5)
    finally:
        await conn.aclose()

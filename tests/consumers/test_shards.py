"""Changing HITSTREAM_STREAM_SHARDS on a running deployment: no entry of an old shard is
left unread, nothing is lost or counted twice (foundation/layout.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import redis
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from tests.helpers import D0, event, poll_stats, stream_entry, wait_for

SITES = [f"shards-{i}" for i in range(16)]
INGEST = frozenset({Role.INGEST})


def _post(app: TestClient, sent: Counter[str], tag: str, with_ids: bool = False) -> None:
    for n, site in enumerate(SITES):
        fields = {"event_id": f"{n:08x}-0000-4000-8000-{len(tag):012x}"} if with_ids else {}
        body = event(site, f"/{tag}", timestamp=f"{D0}T10:00:00Z", **fields)
        assert app.post("/event", json=body).status_code == 202
        sent[site] += 1


def test_a_changed_shard_count_leaves_no_entry_unread_and_counts_each_once(
    make_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    redis_conn: redis.Redis,
) -> None:
    four = make_settings(stream_shards=4, maintenance_interval_s=0.2)
    sent: Counter[str] = Counter()
    # Entries in flight on four shards (no consumer yet), some with client event_ids, and
    # in the untagged stream of a release before shards.
    _post(make_client(four, INGEST), sent, "four")
    _post(make_client(four, INGEST), sent, "ids", with_ids=True)
    for site in SITES[:3]:
        redis_conn.xadd(
            four.keys.legacy.stream,
            stream_entry(event(site, "/legacy", timestamp=f"{D0}T09:00:00Z")),
        )
        sent[site] += 1
    assert sum(redis_conn.xlen(s.stream) for s in four.keys.all_shards) == 2 * len(SITES)

    # The deployment shrinks to two shards: its consumer reads them, the retired two and
    # the legacy stream.
    two = four.model_copy(update={"stream_shards": 2})
    app = make_client(two)
    _post(app, sent, "two")
    for site in SITES:
        poll_stats(app, lambda b, n=sent[site]: b["total_views"] == n, site_id=site, date=D0)

    # An ingest replica that runs with six: the running consumer finds the new shards.
    six = four.model_copy(update={"stream_shards": 6})
    _post(make_client(six, INGEST), sent, "six")
    for site in SITES:
        poll_stats(app, lambda b, n=sent[site]: b["total_views"] == n, site_id=site, date=D0)
    read = {shard["shard"] for shard in app.get("/health/queue").json()["shards"]}
    assert read == {"0", "1", "2", "3", "4", "5", "legacy"}

    # A client's retry of the events with ids, now routed by another count: counted once
    # (the consumer finds them stored); a last round proves nothing else came late.
    _post(app, Counter(), "ids", with_ids=True)
    _post(app, sent, "last")
    for site in SITES:
        poll_stats(app, lambda b, n=sent[site]: b["total_views"] == n, site_id=site, date=D0)
    wait_for(
        lambda: app.get("/health/queue").json()["pending"] == 0 or None, what="nothing pending"
    )
    for site in SITES:
        body = app.get("/stats", params={"site_id": site, "date": D0}).json()
        assert body["total_views"] == sent[site], site

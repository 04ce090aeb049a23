"""hitstream on a Valkey Cluster (3 masters, a replica each): every Redis path, the
shards spread over the masters, and a failover under load.

A cross-slot access fails loudly on a cluster (CROSSSLOT, MOVED), so these tests are the
net for every key, script and transaction that would leave its slot.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster
from starlette.testclient import TestClient

from foundation.settings import Settings
from foundation.testcluster import ValkeyCluster
from hitstream.app import Role
from schemas import entry
from tests.helpers import ADMIN, AUTH, D0, create_site, event, poll_stats, wait_for

pytestmark = pytest.mark.e2e

SHARDS = 8
SITES = [f"cluster-site-{i}" for i in range(24)]
# An entry no consumer can write (an event_id that is no UUID): dead-lettered.
POISON = b'{"event_id":"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz","site_id":"p"}'


@pytest.fixture
def on_cluster(
    valkey_cluster: ValkeyCluster, make_settings: Callable[..., Settings]
) -> Callable[..., Settings]:
    """Settings of a deployment on the session's cluster (a fresh prefix each)."""

    def build(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "redis_url": valkey_cluster.url,
            "stream_shards": SHARDS,
            "admin_token": ADMIN,
            "maintenance_interval_s": 0.5,
        }
        return make_settings(**{**base, **overrides})

    return build


@pytest.fixture
def cluster_conn(valkey_cluster: ValkeyCluster) -> Iterator[RedisCluster]:
    conn = RedisCluster.from_url(valkey_cluster.url)
    yield conn
    conn.close()


def totals(app: TestClient, site: str) -> int:
    body = app.get("/stats", params={"site_id": site, "date": D0}).json()
    return int(body["total_views"])


def test_the_pipeline_on_a_cluster_counts_every_event_once_over_shards_on_every_master(
    on_cluster: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    valkey_cluster: ValkeyCluster,
    cluster_conn: RedisCluster,
) -> None:
    settings = on_cluster()
    app = make_client(settings)
    sent: Counter[str] = Counter()
    for round_ in range(3):
        for index, site in enumerate(SITES):
            batch = [
                event(site, f"/{round_}/{n}", timestamp=f"{D0}T10:00:00Z")
                for n in range(index % 4 + 1)
            ]
            assert app.post("/events", json=batch).status_code == 202
            sent[site] += len(batch)
    # A batch over many sites (many shards), with event_ids, sent twice: counted once.
    mixed = [
        event(
            site, "/mixed", timestamp=f"{D0}T11:00:00Z", event_id=f"{n:08d}-0000-4000-8000-{n:012d}"
        )
        for n, site in enumerate(SITES)
    ]
    for _ in range(2):
        answer = app.post("/events", json=mixed)
        assert answer.status_code == 202, answer.text
    for site in SITES:
        sent[site] += 1
        assert (
            app.post("/event", json=event(site, "/one", timestamp=f"{D0}T12:00:00Z")).status_code
            == 202
        )
        sent[site] += 1

    for site in SITES:
        poll_stats(app, lambda b, n=sent[site]: b["total_views"] == n, site_id=site, date=D0)
    # Nothing more arrives later: every shard is drained, and each site counted exactly.
    state = wait_for(
        lambda: (
            ((q := app.get("/health/queue").json())["pending"] == 0 and q["lag"] == 0 and q) or None
        ),
        what="every shard drained",
    )
    assert [s["shard"] for s in state["shards"]] == [str(k) for k in range(SHARDS)]
    assert sum(s["length"] for s in state["shards"]) == state["length"]
    assert {site: totals(app, site) for site in SITES} == dict(sent)

    used = [s for s in settings.keys.all_shards if cluster_conn.exists(s.stream)]
    masters = {valkey_cluster.master_for_key(s.stream).port for s in used}
    assert len(used) > 1 and len(masters) > 1, "the shards' streams are spread over masters"


def test_every_redis_path_works_on_a_cluster(
    on_cluster: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    cluster_conn: RedisCluster,
) -> None:
    """Keys and rate limits, the registry, sessions, salts and visits, dead letters and
    replay, trimming, the queue panel and /metrics, backpressure."""
    settings = on_cluster(ingest_auth="key", trim_threshold=5, max_deliveries=2)
    app = make_client(settings)
    site = create_site(app, "Cluster")
    key = {"x-api-key": site["api_key"]}
    assert app.post("/event", json=event(site["site_id"])).status_code == 401
    for n in range(12):
        body = event(site["site_id"], f"/{n}", timestamp=f"{D0}T10:{n:02d}:00Z")
        answer = app.post("/event", json=body, headers={**key, "user-agent": "Mozilla/5.0 a"})
        assert answer.status_code == 202, answer.text
    query = {"site_id": site["site_id"], "date": D0}

    def counted() -> dict[str, Any] | None:
        answer = app.get("/stats", params=query, headers=AUTH)
        return answer.json() if answer.json().get("total_views") == 12 else None

    wait_for(counted, what="12 views")
    aggregate = app.post(
        "/api/v2/query",
        json={
            "site_id": site["site_id"],
            "metrics": ["visitors", "visits"],
            "date_range": [D0, D0],
        },
        headers=key,
    )
    assert aggregate.status_code == 200, aggregate.text
    assert aggregate.json()["results"][0]["metrics"] == [1, 1], "one visitor, one visit"

    # Sessions: a dashboard login, held in Redis.
    login = app.post(
        "/login",
        content=f"token={ADMIN}",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "origin": "http://testserver",
        },
        follow_redirects=False,
    )
    assert login.status_code == 303
    assert app.get("/api/sites").status_code == 200

    # Dead letters on their shard, listed and replayed; trimming once acknowledged.
    shard = settings.keys.shard_for("p")
    cluster_conn.xadd(shard.stream, entry.fields(POISON))
    letters = wait_for(
        lambda: app.get("/api/queue", headers=AUTH).json()["dead_letter_list"] or None,
        what="the poison entry among the dead letters",
    )
    assert letters[0]["shard"] == shard.name
    ref = f"{letters[0]['shard']}:{letters[0]['id']}"
    replayed = app.post("/api/queue/dead-letters/replay", json={"ids": [ref]}, headers=AUTH)
    assert replayed.status_code == 200 and replayed.json()["replayed"] == 1
    wait_for(
        lambda: [x for x in app.get("/api/queue", headers=AUTH).json()["dead_letter_list"]
                 if x["id"] != letters[0]["id"]] or None,
        what="the replayed poison to be dead-lettered again",
    )  # fmt: skip
    own = settings.keys.shard_for(site["site_id"]).stream
    wait_for(lambda: cluster_conn.xlen(own) <= 5 or None, what="the site's shard trimmed")
    panel = app.get("/api/queue", headers=AUTH).json()
    assert panel["consumer_list"] and panel["rates"] is not None
    metrics = app.get("/metrics", headers=AUTH)
    assert metrics.status_code == 200 and "hitstream_stream_length" in metrics.text
    for k in range(SHARDS):
        assert f'hitstream_shard_stream_length{{shard="{k}"}}' in metrics.text
    assert app.get("/health").json()["status"] == "ok"


def test_backpressure_reads_every_shard_on_a_cluster(
    on_cluster: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    cluster_conn: RedisCluster,
) -> None:
    """A shard over the backlog refuses its own sites; the others' go on."""
    settings = on_cluster(trim_threshold=5, backlog_high_water=10)
    ingest = make_client(settings, frozenset({Role.INGEST}))
    full = SITES[5]
    shard = settings.keys.shard_for(full)
    elsewhere = next(s for s in SITES if settings.keys.shard_for(s) != shard)
    for n in range(10):
        cluster_conn.xadd(shard.stream, {b"x": str(n).encode()})

    def status(site: str) -> int:
        return ingest.post("/event", json=event(site)).status_code

    wait_for(lambda: status(full) == 503 or None, what="503 once its shard is over the backlog")
    answer = ingest.post("/event", json=event(full))
    assert answer.headers["retry-after"] == "1"
    assert f"shard {shard.name}" in answer.json()["details"][0]["message"]
    assert status(elsewhere) == 202
    assert ingest.get("/health").json()["roles"]["ingest"] == "unavailable"
    cluster_conn.delete(shard.stream)
    wait_for(lambda: status(full) == 202 or None, what="202 once the shard is drained")


def test_a_killed_master_fails_over_with_only_503s_and_every_event_counted_once(
    on_cluster: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    valkey_cluster: ValkeyCluster,
) -> None:
    """SIGKILL the master of one site's shard (not the one holding the control keys)
    while two sites send events: the other site's shard, on a master that lives, takes
    every event; the first site's gets only 202s and 503s; the consumer resumes by
    itself; /health showed the stall; every 202 is counted once."""
    settings = on_cluster(consumer_stall_s=1.0)
    app = make_client(settings)
    control = valkey_cluster.master_for_key(settings.keys.sites).port

    def master_of(site: str) -> int:
        return valkey_cluster.master_for_key(settings.keys.shard_for(site).stream).port

    site = next(s for s in SITES if master_of(s) != control)
    other = next(s for s in SITES if master_of(s) not in (control, master_of(site)))
    stream = settings.keys.shard_for(site).stream
    master = valkey_cluster.master_for_key(stream)
    statuses: dict[str, Counter[int]] = {site: Counter(), other: Counter()}
    stop = threading.Event()
    health: list[int] = []

    def send(target: str) -> None:
        n = 0
        while not stop.is_set():
            answer = app.post("/event", json=event(target, f"/{n}", timestamp=f"{D0}T09:00:00Z"))
            statuses[target][answer.status_code] += 1
            if answer.status_code != 202:
                assert answer.status_code == 503 and answer.headers["retry-after"], answer.text
            n += 1
            time.sleep(0.01)

    senders = [threading.Thread(target=send, args=(target,)) for target in (site, other)]
    for sender in senders:
        sender.start()
    try:
        wait_for(lambda: statuses[site][202] > 50 or None, what="events flowing")
        valkey_cluster.kill(master)
        valkey_cluster.wait_promoted(valkey_cluster.slot(stream))

        def healthy_again() -> bool | None:
            health.append(app.get("/health").status_code)
            return True if 503 in health and health[-1] == 200 else None

        wait_for(healthy_again, timeout=30, interval=0.1, what="/health to show the stall, then ok")
    finally:
        stop.set()
        for sender in senders:
            sender.join()
    try:
        assert set(statuses[site]) <= {202, 503}, statuses
        assert set(statuses[other]) == {202}, statuses
        for target in (site, other):
            accepted = statuses[target][202]
            body = poll_stats(
                app,
                lambda b, n=accepted: b["total_views"] == n,
                timeout=60,
                site_id=target,
                date=D0,
            )
            assert body["total_views"] == accepted
    finally:
        valkey_cluster.restart(master)


def test_consumers_read_again_when_the_node_they_started_from_dies(
    on_cluster: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    valkey_cluster: ValkeyCluster,
) -> None:
    """redis-py's cluster client asks the node it started from for the keys of every
    XREADGROUP: once that node is dead, reads fail until its view of the cluster is
    refreshed. The consumer reads on (after two failed reads it builds its broker anew
    from a primary that answers)."""
    settings = on_cluster(consumer_stall_s=1.0)
    app = make_client(settings)
    start = valkey_cluster.master_for_slot(0)
    assert settings.redis_url == start.url
    site = next(
        s for s in SITES
        if valkey_cluster.master_for_key(settings.keys.shard_for(s).stream).port != start.port
    )  # fmt: skip
    sent = 0
    for n in range(20):
        assert (
            app.post("/event", json=event(site, f"/{n}", timestamp=f"{D0}T08:00:00Z")).status_code
            == 202
        )
        sent += 1
    poll_stats(app, lambda b: b["total_views"] == sent, site_id=site, date=D0)
    valkey_cluster.kill(start)
    try:
        valkey_cluster.wait_promoted(0)
        for n in range(20, 40):
            answer = app.post("/event", json=event(site, f"/{n}", timestamp=f"{D0}T08:00:00Z"))
            assert answer.status_code in (202, 503), answer.text
            sent += answer.status_code == 202
        poll_stats(app, lambda b: b["total_views"] == sent, timeout=60, site_id=site, date=D0)
    finally:
        valkey_cluster.restart(start)

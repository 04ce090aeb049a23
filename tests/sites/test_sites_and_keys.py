"""Sites, keys and auth modes through the real app: no writes or reads where they don't belong."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from hitstream.connections import redis_client
from sites.cache import SiteCache
from sites.model import ApiKey, Site, key_from_json
from sites.registry import Registry
from sites.store import SiteStore
from tests.helpers import ADMIN, AUTH, create_site, event, wait_for


@pytest.fixture
def keyed(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(ingest_auth="key", admin_token=ADMIN, key_grace_s=3600)


@pytest.fixture
def app(make_client: Callable[..., TestClient], keyed: Settings) -> TestClient:
    return make_client(keyed)


def test_create_site_returns_the_key_once_and_stores_only_its_hash(
    app: TestClient, keyed: Settings, ch: Client, redis_conn: redis.Redis
) -> None:
    site = create_site(app)
    assert set(site) >= {"site_id", "api_key", "name", "created_at", "key_id"}
    assert site["site_id"].startswith("my-website-") and site["name"] == "My Website"
    secret = site["api_key"].split("_", 2)[2]  # hs_<key_id>_<secret>; the secret may hold "_"
    listed = app.get("/api/sites", headers=AUTH).json()["sites"]
    assert [s["site_id"] for s in listed] == [site["site_id"]]
    assert "api_key" not in str(listed) and secret not in str(listed)
    stored = ch.query("SELECT key_hash FROM api_key_states").result_rows
    assert stored and all(secret not in row[0] for row in stored)
    cached = redis_conn.hgetall(keyed.keys.api_keys)
    assert secret.encode() not in b"".join(cached.values())


def test_admin_routes_need_the_admin_token(app: TestClient) -> None:
    assert app.get("/api/sites").status_code == 401
    assert app.get("/api/sites", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert app.post("/api/sites", json={"name": "x"}).status_code == 401


def test_admin_routes_are_disabled_without_a_token(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    report = make_client(make_settings(), frozenset({Role.REPORT}))
    response = report.get("/api/sites", headers=AUTH)
    assert response.status_code == 403
    assert "HITSTREAM_ADMIN_TOKEN" in response.json()["error"]


def test_key_mode_writes_with_the_sites_key_only(app: TestClient) -> None:
    a, b = create_site(app, "A"), create_site(app, "B")
    key_a = {"x-api-key": a["api_key"]}
    no_site = {"event_type": "page_view", "path": "/"}
    assert app.post("/event", json=no_site, headers=key_a).status_code == 202
    assert app.post("/event", json=event(a["site_id"]), headers=key_a).status_code == 202
    wrong_site = app.post("/event", json=event(b["site_id"]), headers=key_a)
    assert wrong_site.status_code == 403
    batch = app.post("/events", json=[no_site, event(b["site_id"])], headers=key_a)
    assert batch.status_code == 403 and batch.json()["details"][0]["index"] == 1
    assert app.post("/event", json=event(a["site_id"])).status_code == 401
    bogus = {"x-api-key": a["api_key"][:-1] + ("A" if a["api_key"][-1] != "A" else "B")}
    assert app.post("/event", json=event(a["site_id"]), headers=bogus).status_code == 401
    assert (
        app.post("/event", json=event(a["site_id"]), headers={"x-api-key": "nope"}).status_code
        == 401
    )

    def counted() -> bool | None:
        answer = app.get("/stats", params={"site_id": a["site_id"]}, headers=key_a).json()
        return True if answer["total_views"] == 2 else None

    wait_for(counted, what="site A's two accepted events")


def test_reporting_needs_a_key_of_that_site_or_the_admin_token(app: TestClient) -> None:
    a, b = create_site(app, "A"), create_site(app, "B")
    params = {"site_id": b["site_id"]}
    assert app.get("/stats", params=params).status_code == 401
    assert app.get("/stats", params=params, headers={"x-api-key": a["api_key"]}).status_code == 403
    assert app.get("/stats", params=params, headers={"x-api-key": b["api_key"]}).status_code == 200
    assert app.get("/stats", params=params, headers=AUTH).status_code == 200


def test_rotation_keeps_the_old_key_for_the_grace_period_and_revocation_is_immediate(
    app: TestClient,
) -> None:
    site = create_site(app)
    old = {"x-api-key": site["api_key"]}
    rotated = app.post(f"/api/sites/{site['site_id']}/keys", headers=AUTH)
    assert rotated.status_code == 201
    new = {"x-api-key": rotated.json()["api_key"]}
    body = event(site["site_id"])
    assert app.post("/event", json=body, headers=old).status_code == 202, "grace period"
    assert app.post("/event", json=body, headers=new).status_code == 202
    keys = app.get("/api/sites", headers=AUTH).json()["sites"][0]["keys"]
    assert [k["expires_at"] is not None for k in keys] == [True, False]
    revoked = app.delete(f"/api/sites/{site['site_id']}/keys/{site['key_id']}", headers=AUTH)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert app.post("/event", json=body, headers=old).status_code == 401
    assert app.post("/event", json=body, headers=new).status_code == 202
    assert app.delete(f"/api/sites/{site['site_id']}/keys/unknown", headers=AUTH).status_code == 404
    assert app.post("/api/sites/no-such-site/keys", headers=AUTH).status_code == 404


def test_rotated_out_key_stops_after_the_grace_period(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    app = make_client(make_settings(ingest_auth="key", admin_token=ADMIN, key_grace_s=0))
    site = create_site(app)
    app.post(f"/api/sites/{site['site_id']}/keys", headers=AUTH)
    response = app.post(
        "/event", json=event(site["site_id"]), headers={"x-api-key": site["api_key"]}
    )
    assert response.status_code == 401


def test_public_site_accepts_beacons_from_allowed_origins_only(app: TestClient) -> None:
    site = create_site(app, "Blog", public=True, allowed_origins=["https://blog.example"])
    beacon = {"content-type": "text/plain;charset=UTF-8", "origin": "https://blog.example"}
    body = json.dumps(event(site["site_id"]))
    accepted = app.post("/event", content=body, headers=beacon)
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["access-control-allow-origin"] == "https://blog.example"
    assert "set-cookie" not in accepted.headers
    other = app.post("/event", content=body, headers={**beacon, "origin": "https://evil.example"})
    assert other.status_code == 401
    preflight = app.options(
        "/event",
        headers={"origin": "https://blog.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://blog.example"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]
    refused = app.options("/event", headers={"origin": "https://evil.example"})
    assert refused.status_code == 403


def test_private_site_is_not_writable_from_a_browser_without_a_key(app: TestClient) -> None:
    site = create_site(app, "Private", allowed_origins=["https://x.example"])
    response = app.post(
        "/event", json=event(site["site_id"]), headers={"origin": "https://x.example"}
    )
    assert response.status_code == 401


def test_making_a_site_public_later(app: TestClient) -> None:
    site = create_site(app, "Later")
    origin = {"origin": "https://later.example"}
    assert app.post("/event", json=event(site["site_id"]), headers=origin).status_code == 401
    patched = app.patch(
        f"/api/sites/{site['site_id']}",
        json={"public": True, "allowed_origins": ["https://LATER.example/"]},
        headers=AUTH,
    )
    assert patched.status_code == 200 and patched.json()["allowed_origins"] == [
        "https://later.example"
    ]
    assert app.post("/event", json=event(site["site_id"]), headers=origin).status_code == 202


def test_a_public_site_may_opt_in_to_keyless_events_without_an_origin(
    app: TestClient, keyed: Settings, redis_conn: redis.Redis
) -> None:
    """Server-side senders (no Origin header): refused as before until the public site
    opts in; then accepted, with no CORS headers; browsers' origins as before."""
    site = create_site(app, "Server", public=True, allowed_origins=["https://srv.example"])
    assert site["accept_server_events"] is False
    body = json.dumps(event(site["site_id"]))
    server = {"content-type": "application/json"}
    refused = app.post("/event", content=body, headers=server)
    assert refused.status_code == 401 and refused.json()["error"] == "an API key is required"
    patched = app.patch(
        f"/api/sites/{site['site_id']}", json={"accept_server_events": True}, headers=AUTH
    )
    assert patched.status_code == 200 and patched.json()["accept_server_events"] is True
    accepted = app.post("/event", content=body, headers=server)
    assert accepted.status_code == 202, accepted.text
    assert "access-control-allow-origin" not in accepted.headers
    assert app.post("/event", content=body, headers={**server, "origin": ""}).status_code == 202
    other = app.post("/event", content=body, headers={**server, "origin": "https://evil.example"})
    assert other.status_code == 401, "a browser's origin is checked as before"
    assert app.options("/event", headers={"origin": ""}).status_code == 403
    # Only the opted-in site: another public site, or a private one with the flag, is not.
    closed = create_site(app, "Closed", public=True, allowed_origins=["https://c.example"])
    private = create_site(app, "Private", accept_server_events=True)
    for other_site in (closed, private):
        answer = app.post("/event", json=event(other_site["site_id"]), headers=server)
        assert answer.status_code == 401, answer.text
    assert redis_conn.xlen(keyed.keys.shard(0).stream) == 2
    # Kept in ClickHouse: a cache rebuilt from it still knows the opt-in.
    k = keyed.keys
    redis_conn.delete(k.sites, k.api_keys, k.origins, k.registry_loaded)
    wait_for(
        lambda: (
            True if app.post("/event", content=body, headers=server).status_code == 202 else None
        ),
        what="the registry cache to be rebuilt from ClickHouse",
    )
    listed = {s["site_id"]: s for s in app.get("/api/sites", headers=AUTH).json()["sites"]}
    assert listed[site["site_id"]]["accept_server_events"] is True
    assert listed[closed["site_id"]]["accept_server_events"] is False


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": 5},
        {"name": "x", "allowed_origins": ["not a url"]},
        {"name": "x", "allowed_origins": ["https://a.example/path"]},
        {"name": "x", "public": "yes"},
        {"name": "x", "accept_server_events": "yes"},
        {"name": "x", "unexpected": 1},
    ],
)
def test_bad_site_bodies_are_400(app: TestClient, body: dict[str, Any]) -> None:
    response = app.post("/api/sites", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["details"]


def test_open_mode_accepts_any_site_and_answers_cors_for_any_origin(client: TestClient) -> None:
    response = client.post(
        "/event", json=event("anything"), headers={"origin": "https://a.example"}
    )
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == "*"
    assert client.options("/events", headers={"origin": "https://b.example"}).status_code == 204


def test_registry_survives_losing_redis(
    app: TestClient, keyed: Settings, redis_conn: redis.Redis
) -> None:
    """Flush the cache as a lost Redis would; the app rebuilds it from ClickHouse."""
    site = create_site(app)
    k = keyed.keys
    redis_conn.delete(k.sites, k.api_keys, k.origins, k.registry_loaded)
    headers = {"x-api-key": site["api_key"]}
    assert app.post("/event", json=event(site["site_id"]), headers=headers).status_code == 401
    wait_for(
        lambda: (
            True
            if app.post("/event", json=event(site["site_id"]), headers=headers).status_code == 202
            else None
        ),
        what="the registry cache to be rebuilt from ClickHouse",
    )


def test_ingest_keeps_accepting_known_keys_while_clickhouse_is_away(
    app: TestClient, ch: Client
) -> None:
    site = create_site(app)
    ch.command("DETACH TABLE api_key_states")
    ch.command("DETACH TABLE sites")
    try:
        response = app.post(
            "/event", json=event(site["site_id"]), headers={"x-api-key": site["api_key"]}
        )
        assert response.status_code == 202
        assert app.get("/api/sites", headers=AUTH).status_code == 503
    finally:
        ch.command("ATTACH TABLE sites")
        ch.command("ATTACH TABLE api_key_states")


@pytest.mark.anyio
async def test_revocation_wins_over_a_rotation_that_read_the_key_before_it(
    schema: Client, keyed: Settings
) -> None:
    """The worst interleaving, made on purpose: rotate's read, revoke, rotate's write."""
    conn = redis_client(keyed.redis_url or "")
    try:
        cache = SiteCache(conn, keyed.keys)
        registry = Registry(SiteStore(schema), cache)
        site = Site("race-site", "Race")
        _, plaintext = await registry.create_site(site)
        found = await registry.site(site.site_id)
        assert found is not None
        stale_keys = found[1]
        await registry.revoke(stale_keys[0])
        await registry.rotate(site.site_id, stale_keys, grace_s=3600)
        again = await registry.site(site.site_id)
        assert again is not None
        old = next(k for k in again[1] if k.key_id == stale_keys[0].key_id)
        assert old.revoked and not old.active()
        assert await cache.key(plaintext) is None, "the cache must not bring it back"
        # A rebuild of the cache from ClickHouse keeps it revoked too.
        await conn.delete(keyed.keys.registry_loaded)
        assert await registry.ensure_cached()
        assert await cache.key(plaintext) is None
    finally:
        await conn.aclose()


def test_revoking_while_rotating_never_brings_the_key_back(app: TestClient) -> None:
    """Both requests at once, eight times: the revoked key stays revoked every time."""
    for trial in range(8):
        site = create_site(app, f"race {trial}")
        path = f"/api/sites/{site['site_id']}"
        with ThreadPoolExecutor(2) as pool:
            rotating = pool.submit(app.post, f"{path}/keys", headers=AUTH)
            revoking = pool.submit(app.delete, f"{path}/keys/{site['key_id']}", headers=AUTH)
            assert rotating.result().status_code == 201
            assert revoking.result().status_code == 200
        listed = app.get("/api/sites", headers=AUTH).json()["sites"]
        keys = next(s for s in listed if s["site_id"] == site["site_id"])["keys"]
        first = next(k for k in keys if k["key_id"] == site["key_id"])
        assert first["revoked"] and not first["active"], (
            f"trial {trial}: {first} {rotating.result().text} {revoking.result().text}"
        )
        answer = app.post(
            "/event", json=event(site["site_id"]), headers={"x-api-key": site["api_key"]}
        )
        assert answer.status_code == 401, f"trial {trial}"


def test_sharing_while_rotating_never_makes_a_writing_key(app: TestClient) -> None:
    """A share created and the site's key rotated at once, eight times: the share token
    stays read-only (403 on events) and is not aged by the rotation."""
    for trial in range(8):
        site = create_site(app, f"share race {trial}")
        path = f"/api/sites/{site['site_id']}"
        with ThreadPoolExecutor(2) as pool:
            sharing = pool.submit(app.post, f"{path}/shares", headers=AUTH)
            rotating = pool.submit(app.post, f"{path}/keys", headers=AUTH)
            assert sharing.result().status_code == rotating.result().status_code == 201
        token = sharing.result().json()["token"]
        sent = app.post("/event", json=event(site["site_id"]), headers={"x-api-key": token})
        assert sent.status_code == 403, f"trial {trial}: {sent.text}"
        keys = next(
            s
            for s in app.get("/api/sites", headers=AUTH).json()["sites"]
            if s["site_id"] == site["site_id"]
        )["keys"]
        shared = next(k for k in keys if k["key_id"] == sharing.result().json()["key_id"])
        assert shared["read_only"] and shared["active"], f"trial {trial}: {shared}"


def test_a_non_ascii_authorization_header_is_a_401_not_a_500(app: TestClient) -> None:
    headers = [(b"authorization", "Bearer t\u00e9st".encode("latin-1"))]
    assert app.get("/api/sites", headers=headers).status_code == 401
    stats = app.get("/stats", params={"site_id": "x"}, headers=headers)
    assert stats.status_code == 401


def test_queue_health_needs_the_admin_token_in_key_mode(app: TestClient) -> None:
    site = create_site(app)
    assert app.get("/health/queue").status_code == 401
    with_key = app.get("/health/queue", headers={"x-api-key": site["api_key"]})
    assert with_key.status_code == 401
    assert app.get("/health/queue", headers=AUTH).status_code == 200
    assert app.get("/health").status_code == 200  # liveness stays open


def test_refusals_carry_cors_headers_for_an_origin_some_public_site_allows(
    app: TestClient,
) -> None:
    shop = "https://shop.example"
    create_site(app, "shop", public=True, allowed_origins=[shop])
    # A batch naming no site, from an allowed origin: refused, and readable by the page.
    refused = app.post("/events", json=[{"event_type": "x", "path": "/"}], headers={"origin": shop})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == shop
    stranger = app.post("/event", json=event("x"), headers={"origin": "https://evil.example"})
    assert stranger.status_code == 401
    assert "access-control-allow-origin" not in stranger.headers


def _key_variants(key_id: str) -> list[ApiKey]:
    """One key's record in every state the merge rule distinguishes."""
    made = datetime(2026, 1, 1, tzinfo=UTC)
    ends = (None, made + timedelta(days=1), made + timedelta(days=2))
    return [
        ApiKey(key_id, "merge-site", "hash", made, expires, revoked, read_only)
        for expires, revoked, read_only in itertools.product(ends, (False, True), (False, True))
    ]


@pytest.mark.anyio
async def test_the_cache_merges_key_records_as_clickhouse_does(
    schema: Client, keyed: Settings
) -> None:
    """Every pair of states of one key, written one after the other: the Redis copy
    (MERGE_KEYS) ends as ClickHouse's merge (KEYS) does, both from sites/model.py's
    KEY_MERGE (a share token stays read-only, a revocation stays, the earlier expiry wins)."""
    pairs = [(first, second) for first, second in itertools.product(_key_variants("k"), repeat=2)]
    firsts = [replace(a, key_id=f"{n:012x}") for n, (a, _) in enumerate(pairs)]
    seconds = [replace(b, key_id=f"{n:012x}") for n, (_, b) in enumerate(pairs)]
    store = SiteStore(schema)
    store.insert(keys=firsts)
    store.insert(keys=seconds)
    in_clickhouse = {key.key_id: key for key in store.load()[1]}
    conn = redis_client(keyed.redis_url or "")
    try:
        cache = SiteCache(conn, keyed.keys)
        await cache.put(keys=firsts)
        await cache.put(keys=seconds)
        cached = await conn.hgetall(keyed.keys.api_keys)
    finally:
        await conn.aclose()
    in_redis = {key.key_id: key for key in map(key_from_json, cached.values())}
    assert len(in_redis) == len(in_clickhouse) == len(pairs)
    disagree = [
        (pairs[n], in_redis[key_id], in_clickhouse[key_id])
        for n, key_id in enumerate(f"{n:012x}" for n in range(len(pairs)))
        if in_redis[key_id] != in_clickhouse[key_id]
    ]
    assert not disagree, f"{len(disagree)} of {len(pairs)} pairs, first: {disagree[0]}"
    for (first, second), key in zip(pairs, (in_clickhouse[k.key_id] for k in firsts), strict=True):
        assert key.read_only == (first.read_only or second.read_only)
        assert key.revoked == (first.revoked or second.revoked)


SHARE_STEPS = ("share", "rebuild", "rotate_read", "rotate_write", "revoke", "unmarked_write")


def _share_orders() -> list[tuple[str, ...]]:
    """Every order of the steps in which a rotation reads before it writes, and the
    share exists before a write that does not carry its mark."""
    return [
        order
        for order in itertools.permutations(SHARE_STEPS)
        if order.index("rotate_read") < order.index("rotate_write")
        and order.index("share") < order.index("unmarked_write")
    ]


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_share_token_never_writes_events_whatever_the_interleaving(
    app: TestClient, ch: Client, keyed: Settings
) -> None:
    """A share token beside everything else that writes key records, in every order (180):
    a cache rebuild from ClickHouse, a rotation of the site's key (its read and its write
    apart, as two admins' requests interleave), the revocation of the site's key, and a
    write of the share's record that does not carry `read_only` (a rotation by a build
    from before share tokens, migration 0014, which takes the share for an ordinary
    key). After every step, the token sends no event; at the end it is still a share token."""
    conn = redis_client(keyed.redis_url or "")
    cache = SiteCache(conn, keyed.keys)
    registry = Registry(SiteStore(ch), cache)
    failures: list[str] = []
    try:
        for trial, order in enumerate(_share_orders()):
            site = Site(f"share-race-{trial}", "Share race")
            site_key, _ = await registry.create_site(site)
            share: tuple[ApiKey, str] | None = None
            rotation_read: list[ApiKey] = []
            for step in order:
                if step == "share":
                    share = await registry.share(site.site_id)
                elif step == "rebuild":
                    await conn.delete(keyed.keys.registry_loaded)
                    assert await registry.ensure_cached()
                elif step == "rotate_read":
                    found = await registry.site(site.site_id)
                    rotation_read = found[1] if found else []
                elif step == "rotate_write":
                    await registry.rotate(site.site_id, rotation_read, grace_s=3600)
                elif step == "revoke":
                    await registry.revoke(site_key)
                else:
                    assert share is not None
                    until = datetime.now(UTC) + timedelta(hours=1)
                    unmarked = replace(share[0], read_only=False, expires_at=until)
                    SiteStore(ch).insert(keys=[unmarked])
                    await cache.put(keys=[unmarked])
                if share is not None:
                    sent = app.post(
                        "/event", json=event(site.site_id), headers={"x-api-key": share[1]}
                    )
                    if sent.status_code == 202:
                        failures.append(f"{' '.join(order)}: wrote after {step}")
                        break
            assert share is not None
            # Still a share token: valid, read-only (what the reading routes check).
            kept = await cache.key(share[1])
            assert kept is not None and kept.read_only, f"{order}: {kept}"
    finally:
        await conn.aclose()
    assert not failures, f"{len(failures)} of {len(_share_orders())} orders, e.g. {failures[:3]}"

"""Token buckets in Redis: bursts get 429, buckets refill, one noisy site slows no other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
import redis
from starlette.testclient import TestClient

from foundation.settings import Settings
from tests.helpers import ADMIN as TOKEN
from tests.helpers import AUTH, event, wait_for

ADMIN = AUTH


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    headers = response.headers
    assert int(headers["retry-after"]) >= 1
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(headers)
    assert response.json()["error"] == "rate limit exceeded, retry later"


def test_noisy_key_is_cut_recovers_and_leaves_other_sites_alone(
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    redis_conn: redis.Redis,
) -> None:
    settings = make_settings(
        ingest_auth="key", admin_token=TOKEN, rate_limit_key_per_s=2, rate_limit_key_burst=5
    )
    app = make_client(settings)
    noisy = app.post("/api/sites", json={"name": "noisy"}, headers=ADMIN).json()
    quiet = app.post("/api/sites", json={"name": "quiet"}, headers=ADMIN).json()
    noisy_key, quiet_key = {"x-api-key": noisy["api_key"]}, {"x-api-key": quiet["api_key"]}
    answers = [
        app.post("/event", json=event(noisy["site_id"]), headers=noisy_key) for _ in range(6)
    ]
    assert [a.status_code for a in answers[:5]] == [202] * 5
    assert_limited(answers[5])
    assert answers[5].headers["ratelimit-limit"] == "5"
    assert app.post("/event", json=event(quiet["site_id"]), headers=quiet_key).status_code == 202
    length = redis_conn.xlen(settings.keys.shard(0).stream)
    assert length == 6, "the refused event was not enqueued"
    wait_for(
        lambda: (
            True
            if app.post("/event", json=event(noisy["site_id"]), headers=noisy_key).status_code
            == 202
            else None
        ),
        what="the noisy key's bucket to refill",
    )


@pytest.mark.parametrize("route", ["/event", "/events"])
def test_per_ip_limit_in_open_mode(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings], route: str
) -> None:
    app = make_client(make_settings(rate_limit_ip_per_s=0.5, rate_limit_ip_burst=3))
    body = event("s") if route == "/event" else [event("s")]
    statuses = [app.post(route, json=body).status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    assert_limited(app.post(route, json=body))


def test_limits_can_be_disabled(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    app = make_client(make_settings(rate_limit_ip_per_s=0))
    assert all(app.post("/event", json=event("s")).status_code == 202 for _ in range(50))


@pytest.fixture
def tight(make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]) -> Any:
    """Key mode, buckets of 3 for keys and sites, a roomy IP bucket."""
    settings = make_settings(
        ingest_auth="key",
        admin_token=TOKEN,
        rate_limit_key_per_s=0.01,
        rate_limit_key_burst=3,
        rate_limit_ip_per_s=0.01,
        rate_limit_ip_burst=50,
    )
    return make_client(settings)


def test_a_wrong_secret_does_not_drain_the_keys_bucket(tight: TestClient) -> None:
    site = tight.post("/api/sites", json={"name": "victim"}, headers=ADMIN).json()
    key_id = site["key_id"]
    forged = {"x-api-key": f"hs_{key_id}_{'A' * 43}"}  # the key id is public, the secret not
    for _ in range(5):
        assert tight.post("/event", json=event(site["site_id"]), headers=forged).status_code == 401
    real = {"x-api-key": site["api_key"]}
    statuses = [
        tight.post("/event", json=event(site["site_id"]), headers=real).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 202], "the victim's bucket is whole"


def test_a_disallowed_origin_does_not_drain_a_public_sites_bucket(tight: TestClient) -> None:
    good, bad = "https://shop.example", "https://evil.example"
    body = {"name": "shop", "public": True, "allowed_origins": [good]}
    site = tight.post("/api/sites", json=body, headers=ADMIN).json()
    # The attacker also knows an allowed origin of another public site.
    other = {"name": "blog", "public": True, "allowed_origins": [bad]}
    assert tight.post("/api/sites", json=other, headers=ADMIN).status_code == 201
    for _ in range(5):
        answer = tight.post("/event", json=event(site["site_id"]), headers={"origin": bad})
        assert answer.status_code == 401
    statuses = [
        tight.post("/event", json=event(site["site_id"]), headers={"origin": good}).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 202], "the public site's bucket is whole"


def test_unauthenticated_bodies_are_refused_unread_and_charged_to_the_ip(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    app = make_client(
        make_settings(ingest_auth="key", rate_limit_ip_per_s=0.01, rate_limit_ip_burst=4)
    )
    # Not JSON at all: a 401 (not a 400) shows the refusal came before any parsing.
    junk = b"{" * 800_000
    for origin in ("https://nobody.example", None):
        headers = {"content-type": "application/json"} | ({"origin": origin} if origin else {})
        answer = app.post("/events", content=junk, headers=headers)
        assert answer.status_code == 401, answer.text
    forged = {"x-api-key": "hs_000000000000_" + "B" * 43}
    assert app.post("/event", content=junk, headers=forged).status_code == 401
    assert app.post("/event", content=junk, headers={"x-api-key": "nonsense"}).status_code == 401
    # Every failure was charged to the client IP: its bucket of 4 is now empty.
    assert_limited(app.post("/event", json=event("s"), headers={"origin": "https://x.example"}))


SHOP = "https://shop.example"


@pytest.fixture
def shop(make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]) -> Any:
    """Key mode; a public site whose bucket holds 10 requests, of which one visitor's
    address may take 3; the test client plays a trusted proxy (X-Forwarded-For)."""
    settings = make_settings(
        ingest_auth="key",
        admin_token=TOKEN,
        rate_limit_key_per_s=0.01,
        rate_limit_key_burst=10,
        rate_limit_public_ip_per_s=0.01,
        rate_limit_public_ip_burst=3,
        forwarded_allow_ips="*",
    )
    app = make_client(settings)
    body = {"name": "shop", "public": True, "allowed_origins": [SHOP]}
    site = app.post("/api/sites", json=body, headers=ADMIN).json()
    return app, site, settings


def visitor(ip: str) -> dict[str, str]:
    return {"origin": SHOP, "x-forwarded-for": ip}


def test_a_flooder_from_one_ip_cannot_make_another_ips_events_on_a_public_site_429(
    shop: Any,
) -> None:
    app, site, _ = shop
    flood = [
        app.post("/event", json=event(site["site_id"]), headers=visitor("203.0.113.5"))
        for _ in range(15)
    ]
    statuses = [
        app.post("/event", json=event(site["site_id"]), headers=visitor("198.51.100.9")).status_code
        for _ in range(3)
    ]
    assert statuses == [202] * 3, "the flooder's refused requests left the site's bucket whole"
    assert [a.status_code for a in flood[:3]] == [202] * 3
    for answer in flood[3:]:
        assert_limited(answer)


def test_server_events_without_an_origin_are_limited_as_a_browsers(shop: Any) -> None:
    app, site, _ = shop
    opt_in = {"accept_server_events": True}
    assert app.patch(f"/api/sites/{site['site_id']}", json=opt_in, headers=ADMIN).status_code == 200
    server = {"x-forwarded-for": "203.0.113.7"}
    answers = [app.post("/event", json=event(site["site_id"]), headers=server) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [202] * 3, "the address's share: 3"
    assert_limited(answers[3])
    # The site's bucket (10) is shared with its browsers: 3 taken, 7 left.
    others = [
        app.post("/event", json=event(site["site_id"]), headers=visitor(f"198.51.100.{i}"))
        for i in range(8)
    ]
    assert [a.status_code for a in others[:7]] == [202] * 7
    assert_limited(others[7])


def test_a_keyless_batch_over_the_cap_is_refused_and_nothing_enqueued(
    shop: Any, redis_conn: redis.Redis
) -> None:
    app, site, settings = shop
    cap = settings.max_public_batch_events
    over = [event(site["site_id"])] * (cap + 1)
    refused = app.post("/events", json=over, headers=visitor("203.0.113.6"))
    assert refused.status_code == 400, refused.text
    assert f"at most {cap}" in refused.json()["error"] and "API key" in refused.json()["error"]
    assert redis_conn.xlen(settings.keys.shard(0).stream) == 0
    at_cap = app.post("/events", json=over[:cap], headers=visitor("203.0.113.6"))
    assert at_cap.status_code == 202 and at_cap.json()["accepted"] == cap


def test_keyed_batches_keep_the_full_cap_and_their_own_bucket(
    shop: Any, redis_conn: redis.Redis
) -> None:
    app, site, settings = shop
    keyed = {"x-api-key": site["api_key"], "x-forwarded-for": "203.0.113.6"}
    batch = [event(site["site_id"])] * settings.max_batch_events
    statuses = [app.post("/events", json=batch, headers=keyed).status_code for _ in range(5)]
    assert statuses == [202] * 5, "a key is not held to a visitor's share"
    assert redis_conn.xlen(settings.keys.shard(0).stream) == 5 * settings.max_batch_events


def test_an_owner_can_lower_a_public_sites_own_rate(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        ingest_auth="key",
        admin_token=TOKEN,
        forwarded_allow_ips="*",
    )
    app = make_client(settings)
    body = {"name": "shop", "public": True, "allowed_origins": [SHOP]}
    body["public_rate_limit_per_s"] = 0.5  # a burst of 1: two seconds' worth at most
    site = app.post("/api/sites", json=body, headers=ADMIN).json()
    assert site["public_rate_limit_per_s"] == 0.5
    first = app.post("/event", json=event(site["site_id"]), headers=visitor("198.51.100.1"))
    assert first.status_code == 202
    assert_limited(app.post("/event", json=event(site["site_id"]), headers=visitor("198.51.100.2")))
    # 0: the deployment's rate again.
    changed = app.patch(
        f"/api/sites/{site['site_id']}", json={"public_rate_limit_per_s": 0}, headers=ADMIN
    )
    assert changed.status_code == 200 and changed.json()["public_rate_limit_per_s"] == 0
    again = app.post("/event", json=event(site["site_id"]), headers=visitor("198.51.100.3"))
    assert again.status_code == 202
    listed = app.get("/api/sites", headers=ADMIN).json()["sites"]
    assert listed[0]["public_rate_limit_per_s"] == 0

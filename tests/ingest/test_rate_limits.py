"""Token buckets in Redis: bursts get 429, buckets refill, one noisy site slows no other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
import redis
from starlette.testclient import TestClient

from hitstream.settings import Settings
from tests.helpers import event, wait_for

ADMIN = {"Authorization": "Bearer t"}


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
        ingest_auth="key", admin_token="t", rate_limit_key_per_s=2, rate_limit_key_burst=5
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
    length = redis_conn.xlen(settings.keys.stream)
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
        admin_token="t",
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

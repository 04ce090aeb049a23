"""Guessing credentials: failed admin and key authentications are limited per client
IP and logged without the guess; weak admin tokens are refused at start."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import httpx2 as httpx
import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from foundation.settings import Settings, describe
from tests.helpers import ADMIN, AUTH, create_site, event

BASE = "http://testserver"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE}
GUESS = "guessed-token-0123456789abc"
ALLOWANCE = 10  # HITSTREAM_RATE_LIMIT_AUTH_FAILURES_BURST's default


def from_ip(ip: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers of a request from `ip` (the test client plays a trusted proxy)."""
    return {"x-forwarded-for": ip, **(headers or {})}


@pytest.fixture
def app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(ingest_auth="key", admin_token=ADMIN, forwarded_allow_ips="*"))


def assert_too_many(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["retry-after"]) >= 1


def test_wrong_tokens_on_login_get_429_after_the_allowance_and_the_right_one_works_elsewhere(
    app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    def login(token: str, ip: str) -> httpx.Response:
        return app.post(
            "/login", content=f"token={token}", headers=from_ip(ip, FORM), follow_redirects=False
        )

    statuses = [login(GUESS, "203.0.113.7").status_code for _ in range(ALLOWANCE)]
    assert statuses == [401] * ALLOWANCE
    assert_too_many(login(GUESS, "203.0.113.7"))
    # The attacker's address is locked out even with the right token: no oracle.
    assert_too_many(login(ADMIN, "203.0.113.7"))
    assert login(ADMIN, "198.51.100.2").status_code == 303
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == ALLOWANCE
    assert "POST /login" in failures[0] and "203.0.113.7" in failures[0]
    assert GUESS not in caplog.text and ADMIN not in caplog.text


def test_wrong_bearer_tokens_on_api_sites_get_429_and_successes_are_never_charged(
    app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    attacker = from_ip("203.0.113.8")
    for _ in range(3 * ALLOWANCE):  # the admin's own requests cost nothing
        assert app.get("/api/sites", headers={**attacker, **AUTH}).status_code == 200
    wrong = {**attacker, "Authorization": f"Bearer {GUESS}"}
    statuses = [app.get("/api/sites", headers=wrong).status_code for _ in range(ALLOWANCE)]
    assert statuses == [401] * ALLOWANCE
    refused = app.get("/api/sites", headers=wrong)
    assert_too_many(refused)
    assert refused.json()["details"][0]["field"] == "authorization"
    assert_too_many(app.get("/api/sites", headers={**attacker, **AUTH}))
    assert app.get("/api/sites", headers=from_ip("198.51.100.3", AUTH)).status_code == 200
    assert "GET /api/sites" in caplog.text and "203.0.113.8" in caplog.text
    assert GUESS not in caplog.text


@pytest.mark.parametrize("route", ["/event", "/api/v2/query"])
def test_wrong_api_keys_are_charged_as_failed_authentications(app: TestClient, route: str) -> None:
    site = create_site(app)
    forged = from_ip("203.0.113.9", {"x-api-key": f"hs_{site['key_id']}_{'A' * 43}"})
    body = event(site["site_id"]) if route == "/event" else {
        "site_id": site["site_id"], "date_range": "day", "metrics": ["visitors"]
    }  # fmt: skip
    statuses = [app.post(route, json=body, headers=forged).status_code for _ in range(ALLOWANCE)]
    assert statuses == [401] * ALLOWANCE
    assert_too_many(app.post(route, json=body, headers=forged))
    real = from_ip("198.51.100.4", {"x-api-key": site["api_key"]})
    assert app.post(route, json=body, headers=real).status_code in (200, 202)


@pytest.mark.parametrize("route", ["/event", "/api/v2/query"])
def test_a_revoked_keys_holder_is_refused_but_not_taken_for_a_guesser(
    app: TestClient, route: str
) -> None:
    """A stale shared link fires a query per panel; a server keeps a revoked key: 401s,
    and the address (maybe the admin's office) is not locked out."""
    site = create_site(app)
    revoked = app.delete(f"/api/sites/{site['site_id']}/keys/{site['key_id']}", headers=AUTH)
    assert revoked.status_code == 200
    stale = from_ip("203.0.113.10", {"x-api-key": site["api_key"]})
    body = event(site["site_id"]) if route == "/event" else {
        "site_id": site["site_id"], "date_range": "day", "metrics": ["visitors"]
    }  # fmt: skip
    statuses = [app.post(route, json=body, headers=stale).status_code for _ in range(3 * ALLOWANCE)]
    assert statuses == [401] * 3 * ALLOWANCE
    assert app.get("/api/sites", headers=from_ip("203.0.113.10", AUTH)).status_code == 200


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("secret", "at least 24 characters"),
        ("a" * 40, "at least 10 different characters"),
        ("abababababababababababababababab", "at least 10 different characters"),
        ("abcdefghijklmnopqrstuvwx", "not a run"),
        ("0123456789012345678901234", "not a run"),
    ],
)
def test_a_weak_admin_token_is_refused_with_one_clear_line(token: str, why: str) -> None:
    for field in ("admin_token", "metrics_token"):
        with pytest.raises(ValidationError) as refused:
            Settings(**{field: token})
        [line] = describe(refused.value)
        assert line.startswith(f"HITSTREAM_{field.upper()}: ") and why in line, line
        assert token not in line


def test_generated_and_random_tokens_pass(
    make_client: Callable[..., TestClient], settings: Settings
) -> None:
    make_client(settings.model_copy(update={"admin_token": None}))  # serve makes one
    generated = (settings.data_dir / "admin_token").read_text().strip()
    for token in (generated, secrets.token_urlsafe(32), secrets.token_hex(12), ADMIN):
        assert Settings(admin_token=token).admin_token is not None


@pytest.mark.parametrize("route", ["/event", "/api/v2/query"])
def test_a_right_key_from_a_guessers_address_still_works(app: TestClient, route: str) -> None:
    """Behind one NAT, a guesser's failures lock out its guesses, never the right keys of
    others at the address (256 random bits need no oracle protection)."""
    site = create_site(app)
    forged = from_ip("203.0.113.20", {"x-api-key": f"hs_{site['key_id']}_{'B' * 43}"})
    body = event(site["site_id"]) if route == "/event" else {
        "site_id": site["site_id"], "date_range": "day", "metrics": ["visitors"]
    }  # fmt: skip
    for _ in range(ALLOWANCE):
        assert app.post(route, json=body, headers=forged).status_code == 401
    assert_too_many(app.post(route, json=body, headers=forged))
    same_nat = from_ip("203.0.113.20", {"x-api-key": site["api_key"]})
    assert app.post(route, json=body, headers=same_nat).status_code in (200, 202)
    # The admin token keeps the stricter rule: refused too while the address is over.
    assert_too_many(app.get("/api/sites", headers=from_ip("203.0.113.20", AUTH)))


def test_an_ipv6_guesser_is_limited_by_its_64_not_each_address(app: TestClient) -> None:
    """One subscriber holds a /64: a new address per guess does not reset the count."""
    statuses = [
        app.get(
            "/api/sites",
            headers=from_ip(f"2001:db8:7:7::{i:x}", {"Authorization": f"Bearer {GUESS}"}),
        ).status_code
        for i in range(1, ALLOWANCE + 2)
    ]
    assert statuses == [401] * ALLOWANCE + [429]
    other_64 = from_ip("2001:db8:7:8::1", {"Authorization": f"Bearer {GUESS}"})
    assert app.get("/api/sites", headers=other_64).status_code == 401

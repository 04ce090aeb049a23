"""Umami's collection API (POST /api/send): the mapping of its payload to events
(ingest/umami.py, schemas/umami.py), and the route through the real app and a real
Redis: Umami's answers, its 400s, bots, the preflight, identify, the cache header."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis
from pydantic import ValidationError
from starlette.testclient import TestClient

from foundation.settings import Settings
from ingest import umami
from schemas.entry import ROW_FIELD
from schemas.event import EventIn
from schemas.umami import UmamiPayload, UmamiSend, bad_request

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
BROWSER = {"User-Agent": CHROME}
ADMIN = "umami-admin-Tq8vX2mK9pR4wZ7n"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
WEBSITE = "4f8c1e2a-0b6d-4c3e-9a7f-2d5b8e1c0a94"
ORIGIN = "https://shop.example"


def payload(**fields: Any) -> UmamiPayload:
    return UmamiPayload.model_validate({"website": WEBSITE, **fields})


def mapped(**fields: Any) -> EventIn:
    return EventIn.model_validate(umami.event_fields(payload(**fields), "s1"))


# --- the mapping ---------------------------------------------------------------------


def test_a_v2_trackers_path_is_read_on_its_hostname() -> None:
    event = mapped(hostname="shop.example", url="/pricing?utm_source=hn", title="A%20B")
    assert (event.event_type, event.url) == (
        "pageview",
        "https://shop.example/pricing?utm_source=hn",
    )


def test_a_v3_trackers_full_url_is_kept() -> None:
    event = mapped(hostname="shop.example", url="https://shop.example/app#/settings")
    assert (event.url, event.path) == ("https://shop.example/app#/settings", None)


def test_a_path_without_hostname_keeps_its_path_and_campaign() -> None:
    event = mapped(url="/landing?utm_source=news&utm_medium=mail")
    assert (event.url, event.path) == (None, "/landing")
    assert (event.utm_source, event.utm_medium) == ("news", "mail")


def test_a_custom_event_without_url_is_on_the_root() -> None:
    event = mapped(name="signup", data={"plan": "pro"})
    assert (event.event_type, event.path, event.url) == ("signup", umami.NO_PAGE, None)
    assert event.props == {"plan": "pro"}


def test_data_becomes_props_nested_values_as_json_nulls_left_out() -> None:
    event = mapped(
        name="cart",
        data={"n": 2, "ok": True, "x": 1.5, "gone": None, "items": [1, 2], "o": {"a": 1}},
    )
    assert event.props == {"n": "2", "ok": "true", "x": "1.5", "items": "[1,2]", "o": '{"a":1}'}


def test_a_relative_referrer_is_none_of_the_visits_source() -> None:
    assert mapped(url="/b", referrer="").referrer is None
    assert mapped(url="/b", referrer="/a").referrer == "/a"  # stored as no referrer (encode)


def test_the_client_cannot_choose_its_address_or_agent() -> None:
    sent = payload(ip="203.0.113.9", userAgent="Googlebot", url="/")
    assert "ip" not in sent.model_dump() and "userAgent" not in sent.model_dump()


def test_the_answer_ids_are_stable_for_a_visitor_and_turn_with_the_hour() -> None:
    first = umami.answer_ids(12345, WEBSITE, 7200.0)
    assert first["sessionId"] == umami.answer_ids(12345, WEBSITE, 10_000.0)["sessionId"]
    assert first["visitId"] != umami.answer_ids(12345, WEBSITE, 10_900.0)["visitId"]
    assert first["sessionId"] != umami.answer_ids(12346, WEBSITE, 7200.0)["sessionId"]
    assert uuid.UUID(first["visitId"]).version == 4 and first["cache"]


def test_bad_requests_are_umamis_error_tree() -> None:
    with pytest.raises(ValidationError) as caught:
        UmamiSend.model_validate({"type": "event", "payload": {"website": "nope"}})
    errors = [{"loc": e["loc"], "msg": e["msg"]} for e in caught.value.errors()]
    body = bad_request(errors)
    error = body["error"]
    assert (error["message"], error["code"], error["status"]) == ("Bad request", "bad-request", 400)
    assert error["properties"]["payload"]["properties"]["website"]["errors"]


# --- the route -----------------------------------------------------------------------


@pytest.fixture
def open_app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(admin_token=ADMIN))


@pytest.fixture
def site(open_app: TestClient) -> dict[str, Any]:
    made = open_app.post("/api/sites", json={"name": "Shop", "website_id": WEBSITE}, headers=AUTH)
    assert made.status_code == 201, made.text
    return dict(made.json())


def stream(redis_conn: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(f[ROW_FIELD]) for _, f in redis_conn.xrange(settings.keys.shard(0).stream)]


def send(
    app: TestClient, kind: str = "event", headers: dict[str, str] | None = None, **fields: Any
) -> Any:
    body = {"type": kind, "payload": {"website": WEBSITE, **fields}}
    return app.post("/api/send", json=body, headers={**BROWSER, **(headers or {})})


# A page view as each tracker sends it: v2 (npm umami@2.10.0) a path and an encoded
# title; v3 the full URL, the raw title, a tag and a distinct id.
V2_PAGE = {
    "hostname": "shop.example",
    "url": "/pricing?utm_source=hn",
    "referrer": "https://news.ycombinator.com/",
    "title": "Pricing%20%7C%20Shop",
    "screen": "1920x1080",
    "language": "en-US",
}
V3_PAGE = {
    **V2_PAGE,
    "url": "https://shop.example/pricing?utm_source=hn",
    "title": "Pricing | Shop",
    "tag": "spring",
    "id": "",
}


@pytest.mark.parametrize("page", [V2_PAGE, V3_PAGE], ids=["v2", "v3"])
def test_a_page_view_is_stored_and_answered_as_umami_does(
    open_app: TestClient,
    site: dict[str, Any],
    redis_conn: redis.Redis,
    make_settings: Callable[..., Settings],
    page: dict[str, str],
) -> None:
    answer = send(open_app, **page)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"cache", "sessionId", "visitId"}
    assert answer.headers["access-control-allow-origin"] == "*"
    [row] = stream(redis_conn, make_settings())
    assert (row["site_id"], row["event_type"], row["path"], row["hostname"]) == (
        site["site_id"],
        "pageview",
        "/pricing",
        "shop.example",
    )
    assert (row["referrer"], row["utm_source"]) == ("news.ycombinator.com", "hn")


def test_the_cache_token_comes_back_and_changes_nothing(
    open_app: TestClient,
    site: dict[str, Any],
    redis_conn: redis.Redis,
    make_settings: Callable[..., Settings],
) -> None:
    first = send(open_app, hostname="shop.example", url="/a").json()
    for cache in (first["cache"], "not-a-token", first["cache"] + "x"):
        again = send(open_app, headers={"x-umami-cache": cache}, hostname="shop.example", url="/b")
        assert again.status_code == 200
        assert again.json()["sessionId"] == first["sessionId"]
    assert len(stream(redis_conn, make_settings())) == 4


def test_a_custom_event_from_a_server_has_its_name_and_data(
    open_app: TestClient,
    site: dict[str, Any],
    redis_conn: redis.Redis,
    make_settings: Callable[..., Settings],
) -> None:
    agent = {"User-Agent": "Mozilla/5.0 Umami/v20.20.2"}
    answer = send(open_app, headers=agent, name="signup", data={"plan": "pro", "seats": 3})
    assert answer.status_code == 200, answer.text
    [row] = stream(redis_conn, make_settings())
    assert (row["event_type"], row["path"], row["props"]) == (
        "signup",
        "/",
        {"plan": "pro", "seats": "3"},
    )


@pytest.mark.parametrize(
    "body",
    [
        {"type": "event", "payload": {"website": "not-a-uuid", "url": "/"}},
        {"type": "event", "payload": {"url": "/"}},
        {"type": "pageview", "payload": {"website": WEBSITE}},
        {"payload": {"website": WEBSITE}},
        {"type": "event"},
        {"type": "event", "payload": {"website": WEBSITE, "name": "x" * 51}},
        {"type": "event", "payload": {"website": WEBSITE, "hostname": "h" * 101}},
        {"type": "event", "payload": {"website": WEBSITE, "screen": "123456789012"}},
        {"type": "event", "payload": {"website": WEBSITE, "data": [1]}},
        {"type": "event", "payload": {"website": WEBSITE, "data": {"k": "v" * 3000}}},
        {"type": "event", "payload": {"website": WEBSITE, "hostname": "bad host", "url": "/"}},
        [1],
        "text",
    ],
)
def test_bad_payloads_are_umamis_400_and_nothing_is_stored(
    open_app: TestClient,
    site: dict[str, Any],
    redis_conn: redis.Redis,
    make_settings: Callable[..., Settings],
    body: Any,
) -> None:
    answer = open_app.post("/api/send", json=body, headers=BROWSER)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["message"], error["code"], error["status"]) == ("Bad request", "bad-request", 400)
    assert stream(redis_conn, make_settings()) == []


@pytest.mark.parametrize("value", [[2**64], {"x": "\ud800"}], ids=["65-bit", "surrogate"])
def test_nested_data_json_cannot_hold_is_umamis_400(
    open_app: TestClient,
    site: dict[str, Any],
    redis_conn: redis.Redis,
    make_settings: Callable[..., Settings],
    value: Any,
) -> None:
    """Nested data is stored as JSON text: what JSON text cannot hold is a 400, not a 500."""
    body = {"type": "event", "payload": {"website": WEBSITE, "name": "s", "data": {"x": value}}}
    raw = json.dumps(body)  # ASCII: a lone surrogate travels as its escape
    headers = {**BROWSER, "content-type": "application/json"}
    answer = open_app.post("/api/send", content=raw, headers=headers)
    assert answer.status_code == 400, answer.text
    assert stream(redis_conn, make_settings()) == []


def test_a_body_that_is_not_json_is_umamis_400(open_app: TestClient, site: dict[str, Any]) -> None:
    answer = open_app.post(
        "/api/send", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400 and answer.json()["error"]["message"] == "Bad request"


def test_an_unknown_website_is_not_found(
    open_app: TestClient,
    site: dict[str, Any],
    redis_conn: redis.Redis,
    make_settings: Callable[..., Settings],
) -> None:
    body = {"type": "event", "payload": {"website": str(uuid.uuid4()), "url": "/"}}
    answer = open_app.post("/api/send", json=body, headers=BROWSER)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {"message": "Website not found.", "code": "bad-request", "status": 400}
    }
    assert stream(redis_conn, make_settings()) == []


@pytest.mark.parametrize("kind", ["event", "identify"])
def test_a_bots_request_is_beep_boop_and_dropped(
    open_app: TestClient,
    site: dict[str, Any],
    redis_conn: redis.Redis,
    make_settings: Callable[..., Settings],
    kind: str,
) -> None:
    bot = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}
    answer = send(open_app, kind, headers=bot, hostname="shop.example", url="/", data={"a": 1})
    assert (answer.status_code, answer.json()) == (200, {"beep": "boop"})
    assert stream(redis_conn, make_settings()) == []


def test_identify_is_answered_and_nothing_is_stored(
    open_app: TestClient,
    site: dict[str, Any],
    redis_conn: redis.Redis,
    make_settings: Callable[..., Settings],
) -> None:
    answer = send(open_app, "identify", id="user-42", data={"email": "a@example.com"})
    assert answer.status_code == 200 and set(answer.json()) == {"cache", "sessionId", "visitId"}
    assert stream(redis_conn, make_settings()) == []
    assert b"a@example.com" not in b"".join(redis_conn.keys("*"))


def test_the_preflight_allows_umamis_headers(open_app: TestClient) -> None:
    answer = open_app.options(
        "/api/send",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-umami-cache",
        },
    )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-umami-cache"} <= allowed
    assert "POST" in answer.headers["access-control-allow-methods"]


# --- key mode ------------------------------------------------------------------------


@pytest.fixture
def keyed_app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(ingest_auth="key", admin_token=ADMIN))


def test_key_mode_takes_browsers_on_a_public_sites_origins_only(keyed_app: TestClient) -> None:
    made = keyed_app.post(
        "/api/sites",
        json={"name": "Shop", "public": True, "allowed_origins": [ORIGIN], "website_id": WEBSITE},
        headers=AUTH,
    )
    assert made.status_code == 201, made.text
    page = {"hostname": "shop.example", "url": "/"}
    ok = send(keyed_app, headers={"Origin": ORIGIN}, **page)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
    assert send(keyed_app, headers={"Origin": "https://evil.example"}, **page).status_code == 401
    assert send(keyed_app, name="server-side").status_code == 401  # no Origin, no key
    preflight = keyed_app.options(
        "/api/send", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN


def test_key_mode_takes_a_server_side_sender_once_the_site_opts_in(keyed_app: TestClient) -> None:
    """@umami/node sends no Origin and no key: refused until the public site accepts
    server events (the same opt-in as Plausible's Events API from a backend)."""
    site = {"name": "Api", "public": True, "allowed_origins": [ORIGIN], "website_id": WEBSITE}
    made = keyed_app.post("/api/sites", json=site, headers=AUTH)
    assert made.status_code == 201, made.text
    assert send(keyed_app, name="signup").status_code == 401
    opt_in = {"accept_server_events": True}
    patched = keyed_app.patch(f"/api/sites/{made.json()['site_id']}", json=opt_in, headers=AUTH)
    assert patched.status_code == 200, patched.text
    answer = send(keyed_app, name="signup")
    assert answer.status_code == 200 and "cache" in answer.json()

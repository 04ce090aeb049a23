"""Plausible's Events API shape on every ingest route and content type, through the real
app and a real Redis: what is answered, what reaches the stream, how domains name sites
(schemas/plausible.py, ingest/plausible.py, ingest/routes.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis
from pydantic import ValidationError
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from ingest import plausible
from schemas.entry import ROW_FIELD
from tests.helpers import event

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
BROWSER = {"User-Agent": CHROME}
ADMIN = "plausible-admin-token-2d8f"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def rows(redis_conn: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    return [
        orjson.loads(fields[ROW_FIELD])
        for _, fields in redis_conn.xrange(settings.keys.shard(0).stream)
    ]


@pytest.fixture
def ingest(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, frozenset({Role.INGEST}))


PAGEVIEW = {
    "name": "pageview",
    "url": "https://shop.example/pricing?utm_source=newsletter&utm_campaign=spring",
    "domain": "shop.example",
    "referrer": "https://news.ycombinator.com/item?id=1",
}
# What the npm tracker (v36) sends: one-letter keys, text/plain.
TRACKER = {
    "n": "pageview",
    "v": 36,
    "u": "https://shop.example/docs",
    "d": "shop.example",
    "r": "https://www.google.com/",
}


@pytest.mark.parametrize("route", ["/event", "/api/event"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
@pytest.mark.parametrize("body", [PAGEVIEW, TRACKER], ids=["long", "tracker"])
def test_plausible_events_are_answered_as_plausible_does_and_stored(
    ingest: TestClient,
    redis_conn: redis.Redis,
    settings: Settings,
    route: str,
    content_type: str,
    body: dict[str, Any],
) -> None:
    answer = ingest.post(
        route, content=orjson.dumps(body), headers={**BROWSER, "Content-Type": content_type}
    )
    assert (answer.status_code, answer.text) == (202, "ok")
    assert answer.headers["content-type"].startswith("text/plain")
    assert "x-plausible-dropped" not in answer.headers
    [row] = rows(redis_conn, settings)
    assert (row["site_id"], row["event_type"], row["hostname"]) == (
        "shop.example",
        "pageview",
        "shop.example",
    )
    if body is PAGEVIEW:
        assert (row["path"], row["referrer"]) == ("/pricing", "news.ycombinator.com/item")
        # utm_source wins over the referrer; a known name is written as the source's
        assert (row["utm_source"], row["source"]) == ("newsletter", "Newsletter")
        assert row["utm_campaign"] == "spring"
    else:
        assert (row["path"], row["referrer"], row["source"]) == (
            "/docs",
            "google.com",
            "Google",
        )
    assert row["browser"] == "Chrome" and row["visitor_id"] != 0


def test_both_shapes_in_one_batch(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    answer = ingest.post("/events", json=[event("s1", "/a"), TRACKER], headers=BROWSER)
    assert answer.status_code == 202 and answer.json()["accepted"] == 2
    assert [(r["site_id"], r["path"]) for r in rows(redis_conn, settings)] == [
        ("s1", "/a"),
        ("shop.example", "/docs"),
    ]


def test_a_body_with_hitstream_fields_is_hitstreams_whatever_else_it_carries(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    """The rule that tells the shapes apart: event_type/site_id make it hitstream's (an
    unknown `name` is ignored, as before); without them, name/domain make it Plausible's."""
    answer = ingest.post("/event", json={**event("s1", "/x"), "name": "ignored", "d": "z"})
    assert answer.status_code == 202 and answer.json()["status"] == "accepted"
    missing = ingest.post("/event", json={"site_id": "s1", "name": "pageview", "path": "/"})
    assert missing.status_code == 400
    assert [d["field"] for d in missing.json()["details"]] == ["event_type"]
    assert [r["event_type"] for r in rows(redis_conn, settings)] == [event("s1")["event_type"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n": "pageview", "u": "https://a.example/"}, "d"),  # no domain
        ({"name": "pageview", "domain": "a.example"}, "path"),  # no url (nor path)
        ({"n": "pageview", "u": "not a url", "d": "a.example"}, "u"),
        ({"n": "", "u": "https://a.example/", "d": "a.example"}, "n"),
        ({"n": "pageview", "u": "https://a.example/", "d": "bad domain"}, "d"),
        ({"n": "pageview", "u": "https://a.example/", "d": "a.example", "p": [1]}, "p"),
        (
            {"n": "Buy", "u": "https://a.example/", "d": "a.example", "$": {"amount": 1}},
            "$.currency",
        ),
        (
            {
                "n": "Buy",
                "u": "https://a.example/",
                "d": "a.example",
                "$": {"currency": "USD", "amount": "lots"},
            },
            "$.amount",
        ),
        ({"n": "pageview", "u": "https://a.example/", "d": "a.example", "i": "no"}, "i"),
        # props as a string must be JSON of an object (Plausible would read them as none)
        ({"n": "Buy", "u": "https://a.example/", "d": "a.example", "p": "plan=pro"}, "p"),
        ({"n": "Buy", "u": "https://a.example/", "d": "a.example", "p": "[1, 2]"}, "p"),
        ({"n": "Buy", "u": "https://a.example/", "d": "a.example", "m": '"pro"'}, "m"),
        ({"n": "Buy", "u": "https://a.example/", "d": "a.example", "meta": ""}, "meta"),
        ({"n": "Buy", "u": "https://a.example/", "d": "a.example", "props": '{"a": []}'}, "props"),
        ({"n": "Buy", "u": "https://a.example/", "d": "a.example", "m": 5, "p": {}}, "m"),
    ],
)
def test_bad_plausible_events_get_plausibles_errors_and_nothing_is_enqueued(
    ingest: TestClient,
    redis_conn: redis.Redis,
    settings: Settings,
    body: dict[str, Any],
    field: str,
) -> None:
    answer = ingest.post("/api/event", json=body, headers=BROWSER)
    assert answer.status_code == 400, answer.text
    payload = answer.json()
    assert field in payload["errors"], payload  # Plausible's shape: {"errors": {field: [...]}}
    assert field in [d["field"] for d in payload["details"]]  # and hitstream's
    assert redis_conn.xlen(settings.keys.shard(0).stream) == 0


def test_revenue_interactive_and_engagement_are_stored(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    purchase = {
        "n": "Purchase",
        "u": "https://shop.example/checkout",
        "d": "shop.example",
        "$": {"currency": "eur", "amount": "15.99"},
        "i": False,
        "p": {"plan": "pro", "seats": 3, "trial": False, "empty": "", "none": None},
    }
    engagement = {
        "n": "engagement",
        "u": "https://shop.example/checkout",
        "d": "shop.example",
        "e": 12_345,
        "sd": 87,
        "v": 36,
        "p": {},
    }
    for body in (purchase, engagement):
        assert ingest.post("/api/event", json=body, headers=BROWSER).status_code == 202
    bought, engaged = rows(redis_conn, settings)
    assert (bought["revenue_amount"], bought["revenue_currency"]) == ("15.990", "EUR")
    assert bought["interactive"] is False
    assert bought["props"] == {"plan": "pro", "seats": "3", "trial": "false"}
    assert bought["event_type"] == "Purchase"
    assert (engaged["event_type"], engaged["engagement_ms"], engaged["scroll_depth"]) == (
        "engagement",
        12_345,
        87,
    )
    assert engaged["interactive"] is True


# What the legacy npm tracker (`plausible-tracker` 0.3.9) sends: `p` as a JSON string,
# `w` (the window's width) and `h` (hash mode, 1 or 0).
LEGACY = {
    "n": "Outbound Link: Click",
    "u": "https://shop.example/docs",
    "d": "shop.example",
    "r": None,
    "w": 1280,
    "h": 0,
    "p": '{"url":"https://elsewhere.example/","seats":3,"trial":true}',
}


@pytest.mark.parametrize(
    ("extra", "props"),
    [
        ({}, {"url": "https://elsewhere.example/", "seats": "3", "trial": "true"}),
        ({"p": {"plan": "pro", "seats": 3}}, {"plan": "pro", "seats": "3"}),  # an object
        ({"p": None, "props": '{"plan": "pro"}'}, {"plan": "pro"}),
        ({"m": {"plan": "old"}}, {"plan": "old"}),  # older names, before p
        ({"meta": '{"plan": "older"}'}, {"plan": "older"}),
        ({"m": False, "meta": {"plan": "b"}}, {"plan": "b"}),  # false is not given
        ({"p": '{"empty": "", "none": null}'}, {}),
        ({"p": "{}"}, {}),
    ],
)
def test_the_legacy_trackers_fields_and_every_name_of_the_props(
    ingest: TestClient,
    redis_conn: redis.Redis,
    settings: Settings,
    extra: dict[str, Any],
    props: dict[str, str],
) -> None:
    body = {**LEGACY, **extra}
    sent = {**BROWSER, "Content-Type": "text/plain"}
    answer = ingest.post("/api/event", content=orjson.dumps(body), headers=sent)
    assert (answer.status_code, answer.text) == (202, "ok")
    [row] = rows(redis_conn, settings)
    assert (row["event_type"], row["path"], row["props"]) == (
        "Outbound Link: Click",
        "/docs",
        props,
    )


def test_json_string_props_have_the_limits_of_objects(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    many = orjson.dumps({f"k{i}": i for i in range(31)}).decode()
    long = orjson.dumps({"k": "x" * 2001}).decode()
    for p in (many, long):
        answer = ingest.post("/api/event", json={**LEGACY, "p": p}, headers=BROWSER)
        assert answer.status_code == 400 and "p" in answer.json()["errors"], answer.text
    assert redis_conn.xlen(settings.keys.shard(0).stream) == 0


def test_event_names_are_kept_as_written(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    body = {"n": "Outbound Link: Click", "u": "https://a.example/", "d": "a.example"}
    body["p"] = {"url": "https://elsewhere.example/"}
    assert ingest.post("/api/event", json=body, headers=BROWSER).status_code == 202
    [row] = rows(redis_conn, settings)
    assert row["event_type"] == "Outbound Link: Click"


def test_hash_based_routing_keeps_the_fragment_as_part_of_the_page(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    url = "https://app.example/#/settings"
    for flag in ({"h": 1}, {"h": 0}, {"hashMode": 1}, {"w": 390}):
        body = {"n": "pageview", "u": url, "d": "app.example", **flag}
        assert ingest.post("/api/event", json=body, headers=BROWSER).status_code == 202
    paths = [r["path"] for r in rows(redis_conn, settings)]
    assert paths == ["/#/settings", "/", "/#/settings", "/"]


def test_a_bots_plausible_event_is_answered_ok_and_marked_dropped(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    bot = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}
    answer = ingest.post("/api/event", json=TRACKER, headers=bot)
    assert (answer.status_code, answer.text) == (202, "ok")
    assert answer.headers["x-plausible-dropped"] == "1"
    assert redis_conn.xlen(settings.keys.shard(0).stream) == 0


def test_self_referrals_are_no_referrer(
    ingest: TestClient, redis_conn: redis.Redis, settings: Settings
) -> None:
    internal = {**TRACKER, "r": "https://www.shop.example/docs/intro"}
    assert ingest.post("/api/event", json=internal, headers=BROWSER).status_code == 202
    [row] = rows(redis_conn, settings)
    assert (row["referrer"], row["source"]) == ("", "")


# --- domains name sites (key mode) ---


@pytest.fixture
def keyed(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(ingest_auth="key", admin_token=ADMIN)


@pytest.fixture
def keyed_app(make_client: Callable[..., TestClient], keyed: Settings) -> TestClient:
    return make_client(keyed)


def test_a_public_sites_domain_names_it_for_the_tracker(
    keyed_app: TestClient, keyed: Settings, redis_conn: redis.Redis
) -> None:
    origin = "https://shop.example"
    created = keyed_app.post(
        "/api/sites",
        json={
            "name": "Shop",
            "public": True,
            "allowed_origins": [origin],
            "domains": ["Shop.Example"],
        },
        headers=AUTH,
    )
    assert created.status_code == 201, created.text
    site = created.json()
    assert site["domains"] == ["shop.example"]
    from_page = {**BROWSER, "Origin": origin, "Content-Type": "text/plain"}
    answer = keyed_app.post("/api/event", content=orjson.dumps(TRACKER), headers=from_page)
    assert (answer.status_code, answer.text) == (202, "ok")
    assert answer.headers["access-control-allow-origin"] == origin
    stream = keyed.keys.shard(0).stream
    [(_, fields)] = redis_conn.xrange(stream)
    assert orjson.loads(fields[ROW_FIELD])["site_id"] == site["site_id"]
    # Another origin, or a domain nobody lists, gets nowhere.
    elsewhere = {**from_page, "Origin": "https://evil.example"}
    assert (
        keyed_app.post("/api/event", content=orjson.dumps(TRACKER), headers=elsewhere).status_code
        == 401
    )
    unknown = {**TRACKER, "d": "nobody.example"}
    assert (
        keyed_app.post("/api/event", content=orjson.dumps(unknown), headers=from_page).status_code
        == 401
    )
    assert redis_conn.xlen(stream) == 1


def test_a_server_sends_plausible_events_without_key_or_origin_once_the_site_opts_in(
    keyed_app: TestClient, keyed: Settings, redis_conn: redis.Redis
) -> None:
    """Plausible's Events API called from a backend (no Origin, no key), as Plausible
    takes it: refused until the public site accepts server events."""
    body = {"name": "Signup", "url": "https://api.example/signup", "domain": "api.example"}
    body["props"] = '{"plan": "team"}'
    site = {"name": "Api", "public": True, "domains": ["api.example"]}
    created = keyed_app.post("/api/sites", json=site, headers=AUTH).json()
    assert keyed_app.post("/api/event", json=body, headers=BROWSER).status_code == 401
    opt_in = {"accept_server_events": True}
    keyed_app.patch(f"/api/sites/{created['site_id']}", json=opt_in, headers=AUTH)
    answer = keyed_app.post("/api/event", json=body, headers=BROWSER)
    assert (answer.status_code, answer.text) == (202, "ok")
    [row] = rows(redis_conn, keyed)
    assert (row["site_id"], row["props"]) == (created["site_id"], {"plan": "team"})


def test_a_key_writes_plausible_events_for_its_sites_domains_only(keyed_app: TestClient) -> None:
    mine = keyed_app.post(
        "/api/sites", json={"name": "Mine", "domains": ["mine.example"]}, headers=AUTH
    )
    theirs = keyed_app.post(
        "/api/sites", json={"name": "Theirs", "domains": ["theirs.example"]}, headers=AUTH
    )
    key = {**BROWSER, "x-api-key": mine.json()["api_key"]}
    ok = {"n": "pageview", "u": "https://mine.example/", "d": "mine.example"}
    assert keyed_app.post("/api/event", json=ok, headers=key).status_code == 202
    other = {**ok, "d": "theirs.example"}
    assert keyed_app.post("/api/event", json=other, headers=key).status_code == 403
    assert theirs.status_code == 201


def test_a_domain_belongs_to_one_site(keyed_app: TestClient) -> None:
    first = keyed_app.post(
        "/api/sites", json={"name": "One", "domains": ["one.example"]}, headers=AUTH
    )
    assert first.status_code == 201
    again = keyed_app.post(
        "/api/sites", json={"name": "Two", "domains": ["one.example"]}, headers=AUTH
    )
    assert again.status_code == 409 and "one.example" in again.json()["error"]
    second = keyed_app.post("/api/sites", json={"name": "Two"}, headers=AUTH).json()
    taken = keyed_app.patch(
        f"/api/sites/{second['site_id']}", json={"domains": ["one.example"]}, headers=AUTH
    )
    assert taken.status_code == 409
    mine = keyed_app.patch(
        f"/api/sites/{first.json()['site_id']}",
        json={"domains": ["one.example", "uno.example"]},
        headers=AUTH,
    )
    assert mine.status_code == 200 and mine.json()["domains"] == ["one.example", "uno.example"]
    bad = keyed_app.post(
        "/api/sites", json={"name": "Bad", "domains": ["https://x.example/"]}, headers=AUTH
    )
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("body", "is_plausible"),
    [
        ({"name": "pageview", "url": "https://a.example/", "domain": "a.example"}, True),
        ({"n": "pageview", "u": "https://a.example/", "d": "a.example"}, True),
        ({"name": "x", "site_id": "s"}, False),  # a hitstream mark wins
        ({"path": "/"}, False),
        (["not", "an", "object"], False),
    ],
)
def test_which_shape_a_body_is(body: Any, is_plausible: bool) -> None:
    assert plausible.is_plausible(body) is is_plausible


def test_plausible_keys_become_hitstream_fields_without_empty_props() -> None:
    body = {"n": "Signup", "u": "https://a.example/", "d": "a", "r": None, "p": {"a": "", "b": 1}}
    assert plausible.as_event_fields({**body, "v": 36}) == {
        "event_type": "Signup",
        "url": "https://a.example/",
        "site_id": "a",
        "props": {"b": 1},
    }


def test_props_are_the_first_of_plausibles_names_given_and_may_be_a_json_string() -> None:
    base = {"n": "Signup", "u": "https://a.example/", "d": "a"}
    cases: list[tuple[dict[str, Any], str | None, Any]] = [
        ({}, None, None),
        ({"props": {"a": 1}, "p": '{"b": 2}'}, "p", {"b": 2}),
        ({"p": {"b": 2}, "meta": {"c": 3}}, "meta", {"c": 3}),
        ({"meta": {"c": 3}, "m": '{"d": "4", "e": ""}'}, "m", {"d": "4"}),
        ({"m": None, "meta": False, "p": {}}, "p", {}),
        ({"p": [1]}, "p", [1]),  # not a string: EventIn refuses it
    ]
    for extra, key, props in cases:
        body = {**base, **extra}
        assert plausible.props_key(body) == key
        assert plausible.as_event_fields(body).get("props") == props
    for text in ("", "null", "[]", '"x"', "{", "1"):
        with pytest.raises(ValidationError) as refused:
            plausible.as_event_fields({**base, "p": text})
        [error] = refused.value.errors()
        assert (error["loc"], error["msg"]) == (
            ("props",),
            "must be an object, or a JSON string of one",
        )


def test_refusals_name_fields_as_sent_and_map_to_plausibles_errors() -> None:
    details = [{"field": "event_type", "message": "m1"}, {"field": "props.k", "message": "m2"}]
    sent = plausible.as_sent(details, {"n": "", "p": {"k": []}})
    assert [d["field"] for d in sent] == ["n", "p.k"]
    assert plausible.errors_map(sent) == {"n": ["m1"], "p.k": ["m2"]}
    both = [{"field": "props", "message": "m"}]
    assert plausible.as_sent(both, {"m": "x", "p": {}})[0]["field"] == "m"


def test_the_fragment_is_the_page_only_with_hash_routing() -> None:
    url = "https://a.example/app#/settings"
    assert plausible.hash_route({"u": url, "h": 1}) == "/app#/settings"
    assert plausible.hash_route({"u": url}) is None
    assert plausible.hash_route({"u": "https://a.example/app", "h": 1}) is None


def test_plausibles_answer_marks_a_dropped_event() -> None:
    kept = plausible.answer(False, {"Vary": "Origin"})
    dropped = plausible.answer(True, {})
    assert (kept.status_code, kept.body, kept.headers.get("x-plausible-dropped")) == (
        202,
        b"ok",
        None,
    )
    assert dropped.headers["x-plausible-dropped"] == "1"

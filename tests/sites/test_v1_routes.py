"""Plausible's Sites API v1 through the real app: shapes, messages and the same sites and
goals as /api/sites."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from foundation.settings import Settings
from sites.v1_routes import INVALID_KEY, MISSING_KEY
from tests.helpers import ADMIN, AUTH, create_site, event


@pytest.fixture
def app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(ingest_auth="key", admin_token=ADMIN))


def test_sites_are_created_read_listed_and_deleted(app: TestClient) -> None:
    made = app.post("/api/v1/sites", json={"domain": "https://www.Shop.example/"}, headers=AUTH)
    assert made.status_code == 200, made.text
    site = made.json()
    assert (site["domain"], site["timezone"], site["custom_properties"]) == (
        "shop.example",
        "Etc/UTC",
        [],
    )
    assert site["api_key"].startswith("hs_")
    # The same site in /api/sites, and its key sends events.
    [listed] = app.get("/api/sites", headers=AUTH).json()["sites"]
    assert listed["site_id"] == site["site_id"] and listed["domains"] == ["shop.example"]
    sent = app.post("/event", json=event(site["site_id"]), headers={"x-api-key": site["api_key"]})
    assert sent.status_code == 202
    form = app.post(
        "/api/v1/sites",
        content="domain=blog.example&timezone=Europe%2FBerlin",
        headers={**AUTH, "content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 200 and form.json()["timezone"] == "Europe/Berlin"
    for name in ("shop.example", site["site_id"]):
        got = app.get(f"/api/v1/sites/{name}", headers=AUTH).json()
        assert got["site_id"] == site["site_id"] and got["website_id"] == site["website_id"]
    page = app.get("/api/v1/sites", headers=AUTH).json()
    assert [s["domain"] for s in page["sites"]] == ["blog.example", "shop.example"], "newest first"
    assert page["meta"] == {"after": None, "before": None, "limit": 100}
    first = app.get("/api/v1/sites?limit=1", headers=AUTH).json()
    assert [s["domain"] for s in first["sites"]] == ["blog.example"]
    assert first["meta"]["after"] == form.json()["site_id"] and first["meta"]["before"] is None
    second = app.get(f"/api/v1/sites?limit=1&after={first['meta']['after']}", headers=AUTH).json()
    assert [s["domain"] for s in second["sites"]] == ["shop.example"]
    assert second["meta"]["after"] is None and second["meta"]["before"] == site["site_id"]
    back = app.get(f"/api/v1/sites?limit=1&before={site['site_id']}", headers=AUTH).json()
    assert [s["domain"] for s in back["sites"]] == ["blog.example"]
    # Deleted: gone everywhere, its key no longer sends.
    gone = app.delete("/api/v1/sites/shop.example", headers=AUTH)
    assert gone.status_code == 200 and gone.json() == {"deleted": True}
    assert app.get("/api/v1/sites/shop.example", headers=AUTH).json() == {
        "error": "Site could not be found",
        "details": [{"field": "site_id", "message": "Site could not be found"}],
    }
    assert [s["domain"] for s in app.get("/api/v1/sites", headers=AUTH).json()["sites"]] == [
        "blog.example"
    ]
    assert [s["name"] for s in app.get("/api/sites", headers=AUTH).json()["sites"]] == [
        "blog.example"
    ]
    again = app.post("/event", json=event(site["site_id"]), headers={"x-api-key": site["api_key"]})
    assert again.status_code == 401
    assert app.delete("/api/v1/sites/shop.example", headers=AUTH).status_code == 404
    # The domain is free again.
    assert (
        app.post("/api/v1/sites", json={"domain": "shop.example"}, headers=AUTH).status_code == 200
    )


def test_a_domain_change_keeps_the_former_one_as_a_name(app: TestClient) -> None:
    site = app.post("/api/v1/sites", json={"domain": "old.example"}, headers=AUTH).json()
    changed = app.put("/api/v1/sites/old.example", json={"domain": "new.example"}, headers=AUTH)
    assert changed.status_code == 200 and changed.json()["domain"] == "new.example"
    assert app.get("/api/v1/sites/old.example", headers=AUTH).json()["site_id"] == site["site_id"]
    app.post("/api/v1/sites", json={"domain": "other.example"}, headers=AUTH)
    taken = app.put("/api/v1/sites/other.example", json={"domain": "new.example"}, headers=AUTH)
    assert taken.status_code == 400 and taken.json()["error"] == "domain: has already been taken"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "domain: can't be blank"),
        ({"domain": "  "}, "domain: can't be blank"),
        ({"domain": "not a domain"}, "domain: must be a host name like example.com"),
        (
            {"domain": "a.example", "timezone": "Mars/Olympus"},
            "timezone: must be an IANA time zone like Europe/Berlin",
        ),
    ],
)
def test_bad_sites_are_400_in_plausibles_form(
    app: TestClient, body: dict[str, str], error: str
) -> None:
    answer = app.post("/api/v1/sites", json=body, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["error"] == error


def test_a_taken_domain_is_400(app: TestClient) -> None:
    shop = create_site(app, "Shop", domains=["shop.example"])
    answer = app.post("/api/v1/sites", json={"domain": "shop.example"}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["error"] == "domain: has already been taken"
    # A site's id names it as a domain does: another site may not take it as a domain,
    # which would hand it the first site's queries and events.
    taking = {"domain": shop["site_id"]}
    created = app.post("/api/v1/sites", json=taking, headers=AUTH)
    app.post("/api/v1/sites", json={"domain": "other.example"}, headers=AUTH)
    changed = app.put("/api/v1/sites/other.example", json=taking, headers=AUTH)
    for answer in (created, changed):
        assert answer.json()["error"] == "domain: has already been taken", answer.text
    other = create_site(app, "Other")
    moved = app.patch(
        f"/api/sites/{other['site_id']}", json={"domains": [shop["site_id"]]}, headers=AUTH
    )
    assert moved.status_code == 409 and shop["site_id"] in moved.json()["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/sites"),
        ("POST", "/api/v1/sites"),
        ("GET", "/api/v1/sites/x.example"),
        ("PUT", "/api/v1/sites/x.example"),
        ("DELETE", "/api/v1/sites/x.example"),
        ("GET", "/api/v1/sites/goals?site_id=x.example"),
        ("PUT", "/api/v1/sites/goals"),
        ("DELETE", "/api/v1/sites/goals/1?site_id=x.example"),
    ],
)
def test_every_route_wants_the_admin_token(app: TestClient, method: str, path: str) -> None:
    site = create_site(app, "X", domains=["x.example"])
    missing = app.request(method, path)
    assert missing.status_code == 401 and missing.json()["error"] == MISSING_KEY
    for token in ("wrong", site["api_key"]):
        wrong = app.request(method, path, headers={"Authorization": f"Bearer {token}"})
        assert wrong.status_code == 401 and wrong.json()["error"] == INVALID_KEY


def test_goals_are_listed_found_or_created_and_deleted(app: TestClient) -> None:
    site = app.post("/api/v1/sites", json={"domain": "shop.example"}, headers=AUTH).json()
    body = {
        "site_id": "shop.example",
        "goal_type": "event",
        "event_name": "Purchase",
        "currency": "USD",
    }
    made = app.put("/api/v1/sites/goals", json=body, headers=AUTH)
    assert made.status_code == 200, made.text
    goal = made.json()
    assert goal == {
        "domain": "shop.example",
        "id": goal["id"],
        "display_name": "Purchase",
        "goal_type": "event",
        "event_name": "Purchase",
        "page_path": None,
        "currency": "USD",
        "custom_props": {},
    }
    assert isinstance(goal["id"], int)
    assert app.put("/api/v1/sites/goals", json=body, headers=AUTH).json() == goal
    page = app.put(
        "/api/v1/sites/goals",
        content=f"site_id={site['site_id']}&goal_type=page&page_path=/blog/**",
        headers={**AUTH, "content-type": "application/x-www-form-urlencoded"},
    ).json()
    assert (page["display_name"], page["page_path"], page["event_name"]) == (
        "Visit /blog/**",
        "/blog/**",
        None,
    )
    listed = app.get("/api/v1/sites/goals?site_id=shop.example", headers=AUTH).json()
    assert [g["id"] for g in listed["goals"]] == [goal["id"], page["id"]]
    assert listed["meta"] == {"after": None, "before": None, "limit": 100}
    assert listed["goals"][1]["goal_type"] == "page"
    # The same goals on hitstream's side.
    own = app.get(f"/api/sites/{site['site_id']}/goals", headers=AUTH).json()["goals"]
    assert [g["id"] for g in own] == [goal["id"], page["id"]]
    gone = app.request(
        "DELETE",
        f"/api/v1/sites/goals/{goal['id']}",
        json={"site_id": "shop.example"},
        headers=AUTH,
    )
    assert gone.status_code == 200 and gone.json() == {"deleted": True}
    again = app.delete(f"/api/v1/sites/goals/{goal['id']}?site_id=shop.example", headers=AUTH)
    assert again.status_code == 404 and again.json()["error"] == "Goal could not be found"
    left = app.get("/api/v1/sites/goals?site_id=shop.example", headers=AUTH).json()["goals"]
    assert [g["id"] for g in left] == [page["id"]]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"goal_type": "event", "event_name": "a"},
            400,
            "Parameter `site_id` is required to create a goal",
        ),
        (
            {"site_id": "shop.example", "event_name": "a"},
            400,
            "Parameter `goal_type` is required to create a goal",
        ),
        (
            {"site_id": "shop.example", "goal_type": "scroll"},
            400,
            "Parameter `goal_type` is required to create a goal",
        ),
        (
            {"site_id": "shop.example", "goal_type": "event"},
            400,
            "Parameter `event_name` is required to create a goal",
        ),
        (
            {"site_id": "shop.example", "goal_type": "page", "event_name": "a"},
            400,
            "Parameter `page_path` is required to create a goal",
        ),
        (
            {"site_id": "nope.example", "goal_type": "event", "event_name": "a"},
            404,
            "Site could not be found",
        ),
        (
            {"site_id": "shop.example", "goal_type": "event", "event_name": "pageleave"},
            400,
            "Something went wrong: event_name: The event name 'pageleave' is reserved and "
            "cannot be used as a goal",
        ),
        (
            {"site_id": "shop.example", "goal_type": "event", "event_name": "a", "currency": "ABC"},
            400,
            "Something went wrong: currency: is invalid",
        ),
    ],
)
def test_bad_goals_are_refused_with_plausibles_messages(
    app: TestClient, body: dict[str, str], status: int, error: str
) -> None:
    app.post("/api/v1/sites", json={"domain": "shop.example"}, headers=AUTH)
    answer = app.put("/api/v1/sites/goals", json=body, headers=AUTH)
    assert (answer.status_code, answer.json()["error"]) == (status, error)


def test_goal_lists_and_deletions_name_what_is_missing(app: TestClient) -> None:
    app.post("/api/v1/sites", json={"domain": "shop.example"}, headers=AUTH)
    listed = app.get("/api/v1/sites/goals", headers=AUTH)
    assert (listed.status_code, listed.json()["error"]) == (
        400,
        "Parameter `site_id` is required to list goals",
    )
    unknown = app.get("/api/v1/sites/goals?site_id=nope.example", headers=AUTH)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "Site could not be found")
    deleted = app.delete("/api/v1/sites/goals/1", headers=AUTH)
    assert (deleted.status_code, deleted.json()["error"]) == (
        400,
        "Parameter `site_id` is required to delete a goal",
    )
    elsewhere = app.delete("/api/v1/sites/goals/1?site_id=nope.example", headers=AUTH)
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (404, "Site could not be found")
    bad_json = app.put(
        "/api/v1/sites/goals", content=b"{", headers={**AUTH, "content-type": "application/json"}
    )
    assert bad_json.status_code == 400

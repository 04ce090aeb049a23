"""Goals through the admin routes: stored in ClickHouse, cached in Redis for reporting,
rebuilt from ClickHouse when Redis loses them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.connections import redis_client
from sites.cache import SiteCache
from sites.goals import GoalError, make_goal
from sites.model import Site
from sites.registry import Registry
from sites.store import SiteStore
from tests.helpers import ADMIN, AUTH, create_site, wait_for


@pytest.fixture
def keyed(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(ingest_auth="key", admin_token=ADMIN)


@pytest.fixture
def app(make_client: Callable[..., TestClient], keyed: Settings) -> TestClient:
    return make_client(keyed)


def test_goals_are_found_or_created_listed_and_deleted(app: TestClient, ch: Client) -> None:
    site = create_site(app)
    path = f"/api/sites/{site['site_id']}/goals"
    made = app.put(path, json={"event_name": "Signup", "currency": "eur"}, headers=AUTH)
    assert made.status_code == 201, made.text
    goal = made.json()
    assert goal == {
        "site_id": site["site_id"],
        "id": goal["id"],
        "display_name": "Signup",
        "goal_type": "event",
        "event_name": "Signup",
        "page_path": None,
        "currency": "EUR",
    }
    again = app.put(
        path, json={"event_name": " Signup", "display_name": "x", "currency": "EUR"}, headers=AUTH
    )
    assert again.status_code == 200 and again.json() == goal, "returned as it is"
    page = app.put(path, json={"page_path": "blog/*"}, headers=AUTH).json()
    assert (page["page_path"], page["display_name"], page["goal_type"]) == (
        "/blog/*",
        "Visit /blog/*",
        "page",
    )
    listed = app.get(path, headers=AUTH).json()["goals"]
    assert [g["id"] for g in listed] == [goal["id"], page["id"]]
    gone = app.delete(f"{path}/{goal['id']}", headers=AUTH)
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert [g["id"] for g in app.get(path, headers=AUTH).json()["goals"]] == [page["id"]]
    assert app.delete(f"{path}/{goal['id']}", headers=AUTH).status_code == 404
    # Made again after its deletion: live once more.
    assert app.put(path, json={"event_name": "Signup"}, headers=AUTH).status_code == 201
    rows = ch.query("SELECT count() FROM goals").result_rows[0][0]
    assert rows == 4, "every change is a row"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "event_name"),
        ({"event_name": "a", "page_path": "/b"}, "event_name"),
        ({"event_name": ""}, "event_name"),
        ({"event_name": "pageleave"}, "event_name"),
        ({"event_name": "Buy", "currency": "EURO"}, "currency"),
        ({"page_path": "  "}, "page_path"),
        ({"event_name": 5}, "event_name"),
        ({"event_name": "a", "scroll_threshold": 50}, "scroll_threshold"),
    ],
)
def test_bad_goals_are_400_and_name_the_field(
    app: TestClient, body: dict[str, object], field: str
) -> None:
    site = create_site(app)
    answer = app.put(f"/api/sites/{site['site_id']}/goals", json=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["details"][0]["field"] == field


def test_goal_conflicts_are_400(app: TestClient) -> None:
    site = create_site(app)
    path = f"/api/sites/{site['site_id']}/goals"
    assert (
        app.put(path, json={"event_name": "Buy", "currency": "USD"}, headers=AUTH).status_code
        == 201
    )
    other = app.put(path, json={"event_name": "Buy", "currency": "EUR"}, headers=AUTH)
    assert other.status_code == 400
    assert other.json()["error"] == "event_name: 'Buy' (with currency: USD) has already been taken"
    taken = app.put(path, json={"page_path": "/buy", "display_name": "Buy"}, headers=AUTH)
    assert taken.json()["error"] == "display_name: has already been taken"


def test_goal_routes_need_the_admin_token_and_a_known_site(app: TestClient) -> None:
    site = create_site(app)
    path = f"/api/sites/{site['site_id']}/goals"
    assert app.get(path).status_code == 401
    key = {"Authorization": f"Bearer {site['api_key']}"}
    assert app.put(path, json={"event_name": "x"}, headers=key).status_code == 401
    assert app.get("/api/sites/nope/goals", headers=AUTH).status_code == 404
    assert app.delete(f"{path}/123", headers=AUTH).status_code == 404


@pytest.mark.anyio
async def test_the_goal_cache_is_rebuilt_from_clickhouse(schema: Client, keyed: Settings) -> None:
    conn = redis_client(keyed.redis_url or "")
    try:
        cache = SiteCache(conn, keyed.keys)
        registry = Registry(SiteStore(schema), cache)
        await registry.create_site(Site("g-site", "G"))
        kept, _ = await registry.add_goal(make_goal("g-site", page_path="/a/**"))
        dropped, _ = await registry.add_goal(make_goal("g-site", event_name="Gone"))
        await registry.delete_goal(dropped)
        assert await cache.goals("g-site") == [kept]
        # Redis loses everything but a stale copy of the deleted goal.
        await conn.delete(keyed.keys.registry_loaded, keyed.keys.goals("g-site"))
        await cache.put_goals([dropped])
        assert await registry.ensure_cached()
        assert await cache.goals("g-site") == [kept]
        assert await registry.goals("g-site") == [kept]
    finally:
        await conn.aclose()


def test_a_lost_cache_is_rebuilt_with_the_goals(
    app: TestClient, keyed: Settings, redis_conn: redis.Redis
) -> None:
    site = create_site(app)
    app.put(f"/api/sites/{site['site_id']}/goals", json={"event_name": "Signup"}, headers=AUTH)
    redis_conn.delete(keyed.keys.goals(site["site_id"]), keyed.keys.registry_loaded)
    wait_for(
        lambda: True if redis_conn.hlen(keyed.keys.goals(site["site_id"])) == 1 else None,
        what="the goals cache to be rebuilt from ClickHouse",
    )


@pytest.mark.anyio
async def test_concurrent_goals_of_one_site_keep_plausibles_rules(
    schema: Client, keyed: Settings
) -> None:
    """Two registries (two processes) adding goals of one site at once: each goal is
    checked against the others and written under the site's lock, so one display name
    and one currency an event hold."""
    conns = [redis_client(keyed.redis_url or "") for _ in range(2)]
    try:
        registries = [Registry(SiteStore(schema), SiteCache(c, keyed.keys)) for c in conns]
        await registries[0].create_site(Site("race", "Race"))
        named = [make_goal("race", event_name=f"Race{i}", display_name="Same") for i in range(6)]
        paid = [make_goal("race", event_name="Cur", currency=c) for c in ("EUR", "USD", "GBP")]
        for wanted in (named, paid):
            outcomes = await asyncio.gather(
                *(registries[i % 2].add_goal(goal) for i, goal in enumerate(wanted)),
                return_exceptions=True,
            )
            made = [o for o in outcomes if not isinstance(o, BaseException) and not o[1]]
            refused = [o for o in outcomes if isinstance(o, GoalError)]
            assert len(made) == 1 and len(refused) == len(wanted) - 1, outcomes
        goals = await registries[1].goals("race")
        assert [g.display_name for g in goals].count("Same") == 1
        assert [g.currency for g in goals if g.event_name == "Cur"] == [made[0][0].currency]
    finally:
        for conn in conns:
            await conn.aclose()

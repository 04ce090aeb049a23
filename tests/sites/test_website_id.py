"""A site's website_id (the UUID Umami's clients name it by): made at creation,
settable, unique, stored (migration 0017's default for older rows agrees with
schemas/sites.py), cached for /api/send."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from schemas.sites import default_website_id
from sites.model import site_from_json
from sites.store import SITES_TABLE, SiteStore
from tests.helpers import ADMIN, AUTH, create_site

ORIGIN = "https://two.example"
WEBSITE = "8E2F6A14-3C5B-4D7E-9F01-A2B3C4D5E6F7"


@pytest.fixture
def app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(ingest_auth="key", admin_token=ADMIN))


def test_a_new_site_gets_a_random_website_id_shown_in_the_list(app: TestClient) -> None:
    site = create_site(app)
    assert uuid.UUID(site["website_id"]).version == 4
    [listed] = app.get("/api/sites", headers=AUTH).json()["sites"]
    assert listed["website_id"] == site["website_id"]


def test_a_website_id_is_settable_as_a_uuid_and_unique(app: TestClient) -> None:
    first = create_site(app, "One", website_id=WEBSITE)
    assert first["website_id"] == WEBSITE.lower()
    taken = app.post("/api/sites", json={"name": "Two", "website_id": WEBSITE}, headers=AUTH)
    assert taken.status_code == 409 and taken.json()["details"][0]["field"] == "website_id"
    for bad in ("nope", "8e2f6a143c5b4d7e9f01a2b3c4d5e6f7", "{" + WEBSITE + "}"):
        refused = app.post("/api/sites", json={"name": "Two", "website_id": bad}, headers=AUTH)
        assert refused.status_code == 400, bad
    second = create_site(app, "Two", public=True, allowed_origins=[ORIGIN])
    path = "/api/sites/" + second["site_id"]
    assert app.patch(path, json={"website_id": WEBSITE}, headers=AUTH).status_code == 409
    paths = app.get("/openapi.json").json()["paths"]  # the conflict is documented (the fuzz test)
    assert "409" in paths["/api/sites"]["post"]["responses"]
    assert "409" in paths["/api/sites/{site_id}"]["patch"]["responses"]
    fresh = str(uuid.uuid4())
    changed = app.patch(path, json={"website_id": fresh}, headers=AUTH)
    assert changed.status_code == 200 and changed.json()["website_id"] == fresh
    # Ingest finds the site by its new id at once, and no longer by the old one.
    old = second["website_id"]
    assert _send(app, fresh).status_code == 200
    assert _send(app, old).json()["error"]["message"] == "Website not found."


def _send(app: TestClient, website: str) -> Any:
    body = {"type": "event", "payload": {"website": website, "url": "/"}}
    return app.post("/api/send", json=body, headers={"Origin": ORIGIN})


def test_sites_stored_before_0017_read_the_default_python_computes(schema: Client) -> None:
    now = datetime.now(UTC)
    schema.insert(
        SITES_TABLE,
        [["old-site-1a2b3c", "Old", False, [], now, now]],
        column_names=["site_id", "name", "public", "allowed_origins", "created_at", "updated_at"],
    )
    [site], _ = SiteStore(schema).load()
    assert site.website_id == default_website_id("old-site-1a2b3c")
    assert uuid.UUID(site.website_id).version == 5
    # A record cached before 0017 reads the same id.
    cached = {"site_id": "old-site-1a2b3c", "name": "Old", "public": False}
    record = orjson.dumps({**cached, "allowed_origins": [], "created_at": 0})
    assert site_from_json(record).website_id == site.website_id

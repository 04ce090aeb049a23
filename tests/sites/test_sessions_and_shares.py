"""Dashboard logins and shared links through the real app: the session cookie, what it
and a share token may do, and where neither reaches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from foundation.settings import Settings
from sites.sessions import COOKIE
from tests.helpers import ADMIN, AUTH, create_site, event

BASE = "http://testserver"
SAME_ORIGIN = {"Origin": BASE}
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
}


@pytest.fixture
def keyed(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(ingest_auth="key", admin_token=ADMIN)


@pytest.fixture
def app(make_client: Callable[..., TestClient], keyed: Settings) -> TestClient:
    return make_client(keyed)


def login(app: TestClient, token: str = ADMIN, headers: dict[str, str] = SAME_ORIGIN) -> Any:
    return app.post(
        "/login", content=f"token={token}", headers={**headers, **FORM}, follow_redirects=False
    )


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_login_sets_a_strict_http_only_cookie_and_keeps_the_token_out_of_urls(
    app: TestClient, keyed: Settings, redis_conn: redis.Redis
) -> None:
    refused = login(app, "not-the-token")
    assert refused.status_code == 401 and COOKIE not in refused.cookies
    assert "not the admin token" in refused.text
    done = login(app)
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and ADMIN not in cookie
    assert {"HttpOnly", "SameSite=strict", "Path=/"} <= {p.strip() for p in cookie.split(";")}
    # Redis keeps a digest of the cookie's secret, never the secret nor the admin token.
    secret = done.cookies[COOKIE]
    stored = b"".join(
        key + (redis_conn.get(key) or b"") for key in redis_conn.scan_iter(keyed.keys.session("*"))
    )
    assert stored and secret.encode() not in stored and ADMIN.encode() not in stored
    assert app.get("/api/sites").status_code == 200  # the cookie, now in the client


def test_a_login_form_sent_from_another_origin_is_refused(app: TestClient) -> None:
    forged = login(app, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and COOKIE not in forged.cookies
    assert app.get("/api/sites").status_code == 401


def test_session_writes_need_a_page_of_this_origin(app: TestClient) -> None:
    login(app)
    body = {"name": "From the dashboard"}
    assert app.post("/api/sites", json=body).status_code == 401  # no Origin
    sibling = {"Origin": "https://other.testserver"}
    assert app.post("/api/sites", json=body, headers=sibling).status_code == 401
    assert app.post("/api/sites", json=body, headers=SAME_ORIGIN).status_code == 201


def test_a_session_write_from_this_host_on_another_scheme_or_port_is_refused(
    app: TestClient,
) -> None:
    login(app)
    body = {"name": "From elsewhere"}
    for origin in ("https://testserver", "http://testserver:8080", "null"):
        assert app.post("/api/sites", json=body, headers={"Origin": origin}).status_code == 401
        assert login(app, headers={"Origin": origin}).status_code == 403, origin
    explicit_port = {"Origin": "http://testserver:80"}
    assert app.post("/api/sites", json=body, headers=explicit_port).status_code == 201


def test_behind_a_tls_proxy_the_forwarded_scheme_is_this_origins(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    """X-Forwarded-Proto from a trusted proxy (HITSTREAM_FORWARDED_ALLOW_IPS) names the
    scheme the browser used; the Host header is passed through."""
    app = make_client(make_settings(ingest_auth="key", admin_token=ADMIN, forwarded_allow_ips="*"))
    tls = {"X-Forwarded-Proto": "https"}
    done = login(app, headers={**tls, "Origin": "https://testserver"})
    assert done.status_code == 303 and "Secure" in done.headers["set-cookie"]
    cookie = {"Cookie": f"{COOKIE}={done.cookies[COOKIE]}", **tls}
    body = {"name": "Behind a proxy"}
    sent = app.post("/api/sites", json=body, headers={**cookie, "Origin": "https://testserver"})
    assert sent.status_code == 201, sent.text
    plain = app.post("/api/sites", json=body, headers={**cookie, "Origin": "http://testserver"})
    assert plain.status_code == 401


def test_logout_ends_the_session_for_every_copy_of_the_cookie(app: TestClient) -> None:
    secret = login(app).cookies[COOKIE]
    out = app.post("/logout", headers=SAME_ORIGIN, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    app.cookies.clear()
    stolen = app.get("/api/sites", headers={"Cookie": f"{COOKIE}={secret}"})
    assert stolen.status_code == 401


def test_a_new_admin_token_ends_the_sessions_opened_with_the_old_one(
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    app: TestClient,
) -> None:
    secret = login(app).cookies[COOKIE]
    app.cookies.clear()
    assert app.get("/api/sites", headers={"Cookie": f"{COOKIE}={secret}"}).status_code == 200
    # The same deployment (same Redis keys), restarted with another admin token.
    new_token = "a-new-admin-token-9e4b1c7d"
    changed = make_client(make_settings(ingest_auth="key", admin_token=new_token))
    assert changed.get("/api/sites", headers={"Cookie": f"{COOKIE}={secret}"}).status_code == 401


def test_dashboard_pages_need_a_session_and_forbid_framing(app: TestClient) -> None:
    for path in ("/dashboard", "/dashboard/sites", "/dashboard/queue"):
        away = app.get(path, follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"] == "/login", path
    home = app.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert home.headers["location"] == "/dashboard"
    assert "routes" in app.get("/").json()  # API clients still get the index
    login(app)
    page = app.get("/dashboard")
    assert page.status_code == 200 and 'data-view="stats"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"


def share(app: TestClient, site_id: str) -> dict[str, Any]:
    made = app.post(f"/api/sites/{site_id}/shares", headers=AUTH)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def test_a_share_token_reads_its_site_only_and_writes_nothing(app: TestClient) -> None:
    a, b = create_site(app, "A"), create_site(app, "B")
    shared = share(app, a["site_id"])
    assert shared["path"] == f"/share/{a['site_id']}#auth={shared['token']}"
    bearer = {"Authorization": f"Bearer {shared['token']}"}
    query = {"date_range": "day", "metrics": ["visitors"]}
    assert (
        app.post("/api/v2/query", json={"site_id": a["site_id"], **query}, headers=bearer)
    ).status_code == 200
    other = app.post("/api/v2/query", json={"site_id": b["site_id"], **query}, headers=bearer)
    assert other.status_code == 403
    sent = app.post(
        "/event", json=event(a["site_id"]), headers={"x-api-key": shared["token"], **BROWSER}
    )
    assert sent.status_code == 403 and "share token" in sent.json()["error"]
    assert app.get("/api/sites", headers=bearer).status_code == 401
    assert app.post(f"/api/sites/{a['site_id']}/shares", headers=bearer).status_code == 401
    export = app.get(
        f"/api/sites/{a['site_id']}/export", params={"from": "2026-01-01", "to": "2026-01-02"},
        headers=bearer,
    )  # fmt: skip
    assert export.status_code == 401
    assert app.get("/api/queue", headers=bearer).status_code == 401
    page = app.get(f"/share/{a['site_id']}")
    assert page.status_code == 200 and 'data-mode="share"' in page.text
    assert shared["token"] not in page.text


def test_revoking_a_share_token_closes_the_link_and_rotation_leaves_it_alone(
    app: TestClient,
) -> None:
    site = create_site(app, "Shared")
    shared = share(app, site["site_id"])
    bearer = {"Authorization": f"Bearer {shared['token']}"}
    body = {"site_id": site["site_id"], "date_range": "day", "metrics": ["visitors"]}
    assert app.post(f"/api/sites/{site['site_id']}/keys", headers=AUTH).status_code == 201
    keys = app.get("/api/sites", headers=AUTH).json()["sites"][0]["keys"]
    share_key = next(k for k in keys if k["key_id"] == shared["key_id"])
    assert share_key["read_only"] and share_key["expires_at"] is None  # not aged by rotation
    assert app.post("/api/v2/query", json=body, headers=bearer).status_code == 200
    gone = app.delete(f"/api/sites/{site['site_id']}/keys/{shared['key_id']}", headers=AUTH)
    assert gone.status_code == 200
    assert app.post("/api/v2/query", json=body, headers=bearer).status_code == 401


def test_a_page_of_another_origin_cannot_start_an_export_with_the_session_cookie(
    app: TestClient,
) -> None:
    login(app)
    export = "/api/sites/s/export?from=2026-01-01&to=2026-01-02"
    # What a sibling subdomain's <img src=...> (same-site) or another site's page sends.
    for headers in ({"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "https://evil.testserver"}):  # fmt: skip
        refused = app.get(export, headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json()["details"][0]["field"] in {"sec-fetch-site", "origin"}
    # This origin's pages, the address bar, and clients that send neither header.
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, SAME_ORIGIN, {}):
        assert app.get(export, headers=headers).status_code == 200, headers
    # A bearer token is never sent by a browser on its own: its requests are not refused.
    app.cookies.clear()
    bearer = app.get(export, headers={**AUTH, "Sec-Fetch-Site": "cross-site"})
    assert bearer.status_code == 200

"""/docs works offline: Swagger UI is shipped in the package, with its licence."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from hitstream.openapi import SWAGGER_UI_DIR


def test_docs_load_only_assets_the_server_ships(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links, page.text
    assert all(link.startswith("/") and not link.startswith("//") for link in links), links
    for link in links:
        asset = client.get(link)
        assert asset.status_code == 200, link
        assert len(asset.content) > 10_000, link
    assert "SwaggerUIBundle" in client.get(links[-1]).text
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_the_shipped_assets_carry_their_licence() -> None:
    licence = (SWAGGER_UI_DIR / "LICENSE").read_text()
    assert "Apache License" in licence
    assert (SWAGGER_UI_DIR / "NOTICE").read_text().strip()
    assert "swagger-ui-dist" in (SWAGGER_UI_DIR / "README.md").read_text()

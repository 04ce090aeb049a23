"""/docs works offline: Swagger UI is shipped in the package, with its licence."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from foundation.testing import HitstreamProcess
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


# Debian's chromium, as `make test` installs it; flags that keep it off the network.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.e2e
@pytest.mark.browser
def test_docs_render_in_headless_chromium_without_internet(tmp_path: Path) -> None:
    """A real browser renders /docs from the package alone (this machine has no route to
    a CDN): every operation of the API appears on the page."""
    server = HitstreamProcess(
        "serve", {"HITSTREAM_DATA_DIR": str(tmp_path / "data")}, tmp_path / "log"
    )
    server.start()
    try:
        operations = sum(
            len(item)
            for item in httpx.get(server.base_url + "/openapi.json").json()["paths"].values()
        )
        dom = subprocess.run(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp_path / 'chromium'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                server.base_url + "/docs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        server.stop()
    rendered = re.findall(r'class="opblock opblock-(?:get|post|put|patch|delete)', dom)
    assert len(rendered) == operations > 10, dom[-2000:]

"""Browser fixtures: Debian's headless chromium, and one static web server for the test
websites (told apart by the Host they are asked under: chromium maps *.test to it)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.helpers import CHROMIUM, free_port


@pytest.fixture(scope="module")
def web_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """One static server for every test website (told apart by the Host they are asked
    under: Chromium maps *.test to it)."""
    root = tmp_path_factory.mktemp("web")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], root
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(web_port: tuple[int, Path]) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--host-resolver-rules=MAP *.test 127.0.0.1"],
        )
        yield chromium
        chromium.close()

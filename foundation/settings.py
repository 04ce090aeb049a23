"""The one settings class: every knob, read from `HITSTREAM_*` environment variables."""

from __future__ import annotations

import difflib
import itertools
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from foundation.keys import RedisKeys

# ClickHouse database names and Redis key names end up in DDL and commands;
# they are checked here once, at start, so nothing later has to quote them.
_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
IDENTIFIER = _IDENTIFIER  # schemas/cluster.py checks the names it writes into DDL with it
_KEY_NAME = r"^[A-Za-z0-9_:.\-]{1,128}$"


ENV_PREFIX = "HITSTREAM_"
# Variables with the prefix that are not settings: read by the test suite and benchmarks.
TOOL_VARIABLES = frozenset(
    {"HITSTREAM_FUZZ_EXAMPLES", "HITSTREAM_BENCH_QUICK", "HITSTREAM_BENCH_RECORD"}
)


MAX_RAW_TTL_DAYS = 3650

# Shards of the event stream (foundation/keys.py): on a Redis Cluster, enough that their
# hash tags spread over the masters; on one server, one (it gains nothing from more).
MAX_STREAM_SHARDS = 1024
# A shard's visitor numbers of one site and day (schemas/entry.py NUMBER_SHARD; foundation
# cannot import schemas): the most visitor_numbers may allow.
NUMBER_RANKS = 1 << 22
CLUSTER_STREAM_SHARDS = 16

# A bearer token anyone can try against the admin routes must resist guessing even at
# the failed-authentication limit's pace: `hitstream serve` makes 43 random characters.
MIN_TOKEN_LENGTH = 24
MIN_TOKEN_DISTINCT = 10


def _mostly_runs(token: str) -> bool:
    """Whether two thirds of neighbouring characters are the same or next to each other
    (`abcdef…`, `0123…0123`, `aabbcc…`): distinct characters that a guesser tries first."""
    steps = sum(abs(ord(b) - ord(a)) <= 1 for a, b in itertools.pairwise(token))
    return steps * 3 > (len(token) - 1) * 2


class Settings(BaseSettings):
    """Configuration for every hitstream role; created once at the entry point."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Where things live. Unset URLs mean the embedded engines under data_dir.
    data_dir: Path = Path(".hitstream")
    redis_url: str | None = Field(
        default=None, description="redis:// or rediss:// URL; unset starts embedded Valkey"
    )
    clickhouse_url: str | None = Field(
        default=None, description="chdb:///abs/path or http(s)://host:8123; unset uses chdb"
    )
    clickhouse_database: str = Field(default="hitstream", pattern=_IDENTIFIER)
    engine_memory_decay_ms: int | None = Field(
        default=None,
        ge=0,
        le=600_000,
        description="how long the embedded ClickHouse keeps freed memory before giving it"
        " back (jemalloc's dirty_decay_ms); unset: 500 in `hitstream consume`, the engine's"
        " own 5000 elsewhere (queries reuse it)",
    )
    engine_merges: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="how many merges the embedded ClickHouse runs at once (its"
        " background_pool_size, with one merge a thread); unset: 2 in `hitstream consume`,"
        " the engine's own elsewhere (2 threads taking turns at 4 merges)",
    )
    clickhouse_cluster: str | None = Field(
        default=None,
        pattern=_IDENTIFIER,
        description="cluster name (remote_servers) to migrate ON CLUSTER with replicated,"
        " sharded tables (schemas/cluster.py); unset: one server",
    )

    # HTTP.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_batch_events: int = Field(default=500, ge=1, le=10_000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="request body cap")
    max_connections: int = Field(
        default=4096, ge=1, description="client connections held at once; more are closed"
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="`hitstream ingest` processes serving the port (one per core); "
        "max_connections is each one's",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="a request's headers must arrive within this"
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="a request's body must arrive within this"
    )

    # Redis keys (all derived from the prefix: foundation/keys.py) and the consumer group.
    redis_prefix: str = Field(
        default="hitstream:", pattern=_KEY_NAME, description="prefix of every Redis key"
    )
    group: str = Field(default="hitstream", pattern=_KEY_NAME)
    consumer_name: str | None = Field(
        default=None, pattern=_KEY_NAME, description="default: serve-<host>-<port> or <host>-<pid>"
    )
    redis_cluster: bool | None = Field(
        default=None, description="whether the Redis is a cluster; default: ask it at start"
    )
    stream_shards: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STREAM_SHARDS,
        description="streams the events are split over by site; default 1, on a cluster 16",
    )
    shards: str | None = Field(
        default=None,
        pattern=r"^\d+(-\d+)?(,\d+(-\d+)?)*$",
        description="the shards this consumer reads, e.g. 0-7 or 0,2,4-5; default all",
    )
    batch_size: int = Field(default=10_000, ge=1, le=100_000)
    poll_interval_ms: int = Field(default=100, ge=1, le=60_000)
    batch_linger_ms: int = Field(
        default=200,
        ge=0,
        le=10_000,
        description="pause after a partial batch, to insert fewer, larger ones",
    )
    insert_backoff_initial_s: float = Field(default=0.1, gt=0)
    insert_backoff_max_s: float = Field(default=10.0, gt=0)

    consumer_stall_s: float = Field(
        default=20.0,
        gt=0,
        le=3600,
        description="a consumer none of whose reads completed this long is unavailable",
    )

    # Delivery guarantees (docs/guarantees.md).
    claim_idle_ms: int = Field(
        default=60_000, ge=100, description="pending this long with no owner activity: reclaimed"
    )
    maintenance_interval_s: float = Field(
        default=5.0, gt=0, description="how often consumers reclaim and trim"
    )
    max_deliveries: int = Field(default=5, ge=1, description="attempts before dead-lettering")
    trim_threshold: int = Field(
        default=100_000, ge=1, description="stream length above which acknowledged entries go"
    )
    backlog_high_water: int = Field(
        default=1_000_000, ge=1, description="stream length above which ingest answers 503"
    )
    dedup_window_s: int = Field(
        default=3600, ge=1, description="ingest remembers client event_ids this long"
    )
    visitor_numbers: int = Field(
        default=1_000_000,
        ge=0,
        le=NUMBER_RANKS - 1,
        description="visitors numbered per site and UTC day (about 55 bytes of Redis each, kept"
        " two days; page breakdowns count them from bitmaps), later ones counted by ID",
    )
    shutdown_timeout_s: float = Field(default=30.0, gt=0)

    send_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="a client reading none of an answer this long: cut"
    )
    access_log: bool = Field(default=False, description="log one line per HTTP request")

    # Stats queries (docs/security.md, "Query limits"): what one query may take of the engine,
    # and how long a request waits for a free reader.
    query_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="a stats query's time limit (400 past it)"
    )
    query_max_memory: ByteSize = Field(
        default=ByteSize(1 << 30), ge=16 << 20, description="memory of a stats query (400 past it)"
    )
    query_wait_s: float = Field(
        default=5.0, gt=0, le=120, description="how long a query waits for a free reader (then 503)"
    )

    # Exports (docs/security.md): how long one may last, the disk Parquet's files take.
    export_timeout_s: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 86_400,
        description="an export is cut after this long (a reader that stops reading)",
    )
    export_max_bytes: ByteSize = Field(
        default=ByteSize(10 << 30),
        ge=1 << 20,
        description="Parquet exports' temporary files at most this much; more are refused",
    )

    # Security (docs/security.md).
    ingest_auth: Literal["open", "key"] = Field(
        default="open", description="open: any site_id; key: x-api-key required (or public site)"
    )
    admin_token: SecretStr | None = Field(
        default=None, description="bearer token for /api/sites; serve generates one if unset"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="bearer token for /metrics in key mode (or the admin token)"
    )
    key_grace_s: int = Field(default=86_400, ge=0, description="old keys live on after rotation")
    session_ttl_s: int = Field(
        default=7 * 86_400, ge=60, description="how long a dashboard login lasts"
    )
    rate_limit_ip_per_s: float = Field(default=1000, ge=0, description="0 disables")
    rate_limit_ip_burst: int = Field(default=2000, ge=0)
    rate_limit_key_per_s: float = Field(
        default=1000, ge=0, description="per API key, or per public site; 0 disables"
    )
    rate_limit_key_burst: int = Field(default=2000, ge=0)
    rate_limit_public_ip_per_s: float = Field(
        default=10, ge=0, description="per visitor address on one public site; 0 disables"
    )
    rate_limit_public_ip_burst: int = Field(default=100, ge=0)
    rate_limit_auth_failures_per_s: float = Field(
        default=0.2, ge=0, description="failed admin/key authentications per address; 0 disables"
    )
    rate_limit_auth_failures_burst: int = Field(default=10, ge=0)
    max_public_batch_events: int = Field(
        default=10, ge=1, le=10_000, description="largest POST /events without an API key"
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1", description="proxies trusted for X-Forwarded-For (client IPs)"
    )

    # Embedded Valkey persistence and memory cap.
    redis_appendfsync: Literal["always", "everysec", "no"] = "everysec"
    redis_maxmemory: ByteSize = Field(
        default=ByteSize(1 << 30),
        ge=64 << 20,
        description="embedded Valkey memory cap (e.g. 1GiB); writes get 503 beyond it",
    )

    # The visitor's region and city (ingest/places.py): the directory of DB-IP's city
    # databases (`make geo-db` fills .hitstream/geo); empty: the country alone.
    geo_city_db: str = Field(
        default="", description="directory of dbip-city-ipv4/ipv6.mmdb; empty: country only"
    )

    # ClickHouse retention of raw rows (0: forever); the aggregate tables keep their rows.
    # At most 10 years: ClickHouse's DateTime ends in 2106, and a TTL past it wraps around.
    raw_ttl_days: int = Field(default=90, ge=0, le=MAX_RAW_TTL_DAYS)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.backlog_high_water <= self.trim_threshold:
            raise ValueError("backlog_high_water must be above trim_threshold")
        chosen = self.consumed_shards
        count = self.stream_shards or MAX_STREAM_SHARDS
        if chosen is not None and (not chosen or max(chosen) >= count):
            raise ValueError(f"shards must name shards from 0 to {count - 1}")
        if self.clickhouse_cluster and not (self.clickhouse_url or "").startswith("http"):
            raise ValueError(
                "clickhouse_cluster needs a ClickHouse server's clickhouse_url (http:// or"
                " https://): chdb runs no cluster"
            )
        return self

    @field_validator("admin_token", "metrics_token")
    @classmethod
    def _strong(cls, value: SecretStr | None) -> SecretStr | None:
        token = None if value is None else value.get_secret_value()
        if token is not None and (
            len(token) < MIN_TOKEN_LENGTH
            or len(set(token)) < MIN_TOKEN_DISTINCT
            or _mostly_runs(token)
        ):
            raise ValueError(
                f"too easy to guess: use at least {MIN_TOKEN_LENGTH} characters with at "
                f"least {MIN_TOKEN_DISTINCT} different characters, not a run such as "
                "abcd… or 1234… (e.g. the output of `openssl rand -base64 32`)"
            )
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("chdb://", "http://", "https://")):
            raise ValueError("must start with chdb://, http:// or https://")
        return value

    def consumer_for(self, all_in_one: bool) -> str:
        """This process's name in the group; `serve` keeps one across restarts.

        A stable name lets a restarted `serve` finish its own pending entries at once;
        replicas of `consume` default to host and pid, and their leftovers are reclaimed.
        """
        if self.consumer_name:
            return self.consumer_name
        host = socket.gethostname()
        return f"serve-{host}-{self.port}" if all_in_one else f"{host}-{os.getpid()}"

    @property
    def keys(self) -> RedisKeys:
        """The Redis key names of this deployment (one shard until `for_redis` knows)."""
        return RedisKeys(self.redis_prefix, self.stream_shards or 1)

    def for_redis(self, cluster: bool) -> Settings:
        """These settings with the shard count decided for the Redis found at start."""
        if self.stream_shards is not None:
            return self
        return self.model_copy(update={"stream_shards": CLUSTER_STREAM_SHARDS if cluster else 1})

    @property
    def consumed_shards(self) -> frozenset[int] | None:
        """The shards HITSTREAM_SHARDS names (None: every shard)."""
        if self.shards is None:
            return None
        chosen: set[int] = set()
        for part in self.shards.split(","):
            first, _, last = part.partition("-")
            chosen.update(range(int(first), int(last or first) + 1))
        return frozenset(chosen)

    @property
    def clickhouse_dsn(self) -> str:
        """The DSN clickhouse-connect opens: the setting, or chdb under data_dir."""
        return self.clickhouse_url or f"chdb://{self.data_dir / 'clickhouse'}"

    @property
    def embedded_clickhouse(self) -> bool:
        """Whether ClickHouse is the embedded engine (chdb) in this process."""
        return self.clickhouse_dsn.startswith("chdb://")


def variable(field: str) -> str:
    """The environment variable that sets `field`."""
    return ENV_PREFIX + field.upper()


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each HITSTREAM_* variable that sets nothing (a typo is not silent)."""
    known = {variable(name) for name in Settings.model_fields}
    warnings = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name in TOOL_VARIABLES:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is not a hitstream setting and is ignored{hint}")
    return warnings


def describe(error: ValidationError) -> list[str]:
    """Settings errors in the user's terms: the variable, the value's problem."""
    lines = []
    for item in error.errors(include_url=False):
        field = next((str(part) for part in item["loc"] if isinstance(part, str)), None)
        where = variable(field) if field else "settings"
        lines.append(f"{where}: {item['msg']}")
    return lines

"""The migrations' cluster form: with HITSTREAM_CLICKHOUSE_CLUSTER set, each statement of
`schemas/migrations/` is rendered for a ClickHouse cluster of shards and replicas; without
it, the statements run exactly as written (tests/schemas/snapshots/ holds both forms).

Every table of the migrations becomes two on every server:

- `<name>_local`, a Replicated*MergeTree holding one shard's rows, whose replicas meet in
  Keeper at `/clickhouse/tables/{shard}/{database}/<name>_local` (`{shard}`, `{replica}` and
  `{database}` are macros each server expands; deploy/clickhouse-cluster/ sets the first two);
- `<name>`, a Distributed table over the locals that keeps today's name, so queries, the
  consumer's inserts and the registry's writes are unchanged. A row goes to the shard of
  cityHash64 of its table's first sort column: `site_id` for every table of site data,
  `key_id` for API keys. The rows that a merge, FINAL or a uniqExact state brings together
  therefore always live on one shard, and each shard answers for its sites whole.

Materialized views read `events_local` and write the local aggregate tables: an insert fires
the views only on the replica that took it, and replication carries the raw part and the
aggregate parts to the other replica (fetched parts fire no view, so nothing counts twice).
Column changes go to both tables (to the Distributed one last when adding, first when
dropping); index and TTL changes to the local one only; DROP TABLE drops both with SYNC, so
Keeper forgets the path at once and a table created again there (0013's down step) starts
clean. Statements the renderer has no form for raise ValueError: a new migration of a new
kind fails the snapshot test instead of rendering wrong.

Insert deduplication through a Distributed table (what WRITER_SETTINGS is for): the
consumer names each batch with an `insert_deduplication_token`. With
`distributed_foreground_insert = 1` the server that takes the insert splits the rows by
the sharding key and sends each shard its part as an insert carrying the query's settings,
the token included; that shard's `events_local` records the token's block IDs in Keeper,
shared by both its replicas (window: REPLICATED_DEDUP_WINDOW blocks per partition, for at
most DEDUP_WINDOW_SECONDS), and its views skip what they already have with
`deduplicate_blocks_in_dependent_materialized_views = 1` (consumers/sink.py sets it). The
split depends only on the rows and the shard list, so replaying a plan sends every shard
the part it got the first time: shards that stored it skip it, shards that missed it take
it, through either replica. Background Distributed inserts (the server default) would
break this: the insert returns before any shard has the rows (an XACK before the data is
stored), and the spooled files may be sent merged with other inserts, so a replay no longer
matches block for block. Changing the shard list or weights changes the split: drain the
stream (no recorded plans) before resharding, or a replay can land on a shard that never
saw its token.
"""

from __future__ import annotations

import re
from typing import Final

from foundation.settings import IDENTIFIER

LOCAL_SUFFIX: Final = "_local"
# {shard}, {database} and {replica} are macros each server expands as it creates a replica.
REPLICA_PATH: Final = "/clickhouse/tables/{{shard}}/{{database}}/{table}"
REPLICA_NAME: Final = "{replica}"
# One replica set over every server (not per shard): the ledger any runner reads. Its
# replica names ({replica}) must therefore be unique in the whole cluster.
EVERYWHERE_PATH: Final = "/clickhouse/tables/all/{{database}}/{table}"

# Today's tables keep the last 10,000 insert tokens (non_replicated_deduplication_window);
# their replicated form keeps as many, and a week at most: Keeper drops older block IDs.
REPLICATED_DEDUP_WINDOW: Final = 10_000
DEDUP_WINDOW_SECONDS: Final = 7 * 86_400

# What the consumer's insert into `events` adds to its settings under a cluster (merged
# into consumers/sink.py's INSERT_SETTINGS, and its EXISTING_IDS read). Foreground inserts:
# see the module docstring. Every writer sends each shard's rows to that shard's first
# healthy replica (in_order, not the local one), so the "already stored?" read, sent the
# same way, sees the insert without waiting for replication. async_insert stays off: an
# asynchronous insert deduplicates by its own rules, not the batch's token.
WRITER_SETTINGS: Final[dict[str, int | str]] = {
    "distributed_foreground_insert": 1,
    "prefer_localhost_replica": 0,
    "load_balancing": "in_order",
    "async_insert": 0,
}
# INSERT ... SELECT statements of the migrations go through Distributed tables as well.
MIGRATION_INSERT_SETTINGS: Final[dict[str, int]] = {"distributed_foreground_insert": 1}
# For stats queries (reporting's readers), optional: each filters on site_id, so with this
# a query reads only the shard holding its site instead of every shard.
READER_SETTINGS: Final[dict[str, int]] = {"optimize_skip_unused_shards": 1}

# The migration ledger on a cluster (schemas/migrate.py's CREATE_LEDGER is the one-server
# form): one replica set over every server, read after SYNC_LEDGER, so the runner holding
# the lock (schemas/runner_lock.py) sees every version recorded before it took it.
CREATE_LEDGER: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER {cluster}
(
    version    UInt32,
    name       String,
    applied_at DateTime DEFAULT now()
)
ENGINE = ReplicatedReplacingMergeTree('{path}', '{replica}')
ORDER BY version
"""
SYNC_LEDGER: Final = "SYSTEM SYNC REPLICA schema_migrations"
# The ledger's rows are never deduplicated: a version rolled back (DELETE) and applied
# again writes the same row, which a replicated table would otherwise skip.
LEDGER_INSERT_SETTINGS: Final[dict[str, int]] = {"insert_deduplicate": 0}
# A rollback's DELETE from the ledger returns once every replica has applied it.
LEDGER_DELETE_SETTINGS: Final[dict[str, int]] = {"mutations_sync": 2}
CREATE_DATABASE: Final = "CREATE DATABASE IF NOT EXISTS `{database}` ON CLUSTER {cluster}"
# A database migrated for one server has its own tables under these names: refused.
TABLE_ENGINE: Final = (
    "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = {table:String}"
)

_IDENTIFIER = re.compile(IDENTIFIER)
_CREATE_TABLE = re.compile(
    r"CREATE TABLE (?P<exists>IF NOT EXISTS )?(?P<name>\w+)(?P<body>.*)", re.S
)
_ENGINE = re.compile(r"ENGINE = (?P<engine>\w*MergeTree)(?:\((?P<args>[^()]*)\))?")
_FIRST_SORT_COLUMN = re.compile(r"ORDER BY \(?\s*(?P<key>\w+)\s*(?=[,)]|$)", re.M)
_OLD_WINDOW = re.compile(r"non_replicated_deduplication_window = \d+")
_CREATE_VIEW = re.compile(
    r"CREATE MATERIALIZED VIEW (?P<exists>IF NOT EXISTS )?(?P<name>\w+) TO (?P<target>\w+) AS"
    r"(?P<select>.*)",
    re.S,
)
_SOURCE = re.compile(r"\bFROM (\w+)")
_ALTER = re.compile(r"ALTER TABLE (?P<name>\w+)(?P<clauses>.*)", re.S)
_COLUMN_CLAUSE = re.compile(r"(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b")
_DROP = re.compile(r"DROP (?P<kind>TABLE|VIEW) (?P<exists>IF EXISTS )?(?P<name>\w+)")
_INSERT = re.compile(
    r"INSERT INTO (?P<name>\w+)(?P<columns> \([\w, ]+\))?(?:\s+SETTINGS (?P<settings>.*?))?"
    r"(?P<rest>\s+SELECT\b.*)",
    re.S,
)


def identifier(name: str, what: str = "cluster") -> str:
    """`name` if it can stand unquoted in DDL (Settings checks the same pattern at start)."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a {what} name: {name!r}")
    return name


def local(table: str) -> str:
    """The name of a table's shard-local half."""
    return table + LOCAL_SUFFIX


def render(statement: str, cluster: str) -> list[str]:
    """The statements that do on `cluster` what `statement` does on one server."""
    cluster = identifier(cluster)
    text = statement.strip()
    for pattern, form in (
        (_CREATE_TABLE, _create_table),
        (_CREATE_VIEW, _create_view),
        (_ALTER, _alter),
        (_DROP, _drop),
        (_INSERT, _insert),
    ):
        found = pattern.fullmatch(text)
        if found:
            return form(found, cluster)
    raise ValueError(f"no cluster form for this statement: {text[:80]!r}")


def ledger(cluster: str) -> str:
    """CREATE_LEDGER for `cluster`."""
    path = EVERYWHERE_PATH.format(table="schema_migrations")
    return CREATE_LEDGER.format(cluster=identifier(cluster), path=path, replica=REPLICA_NAME)


def create_database(database: str, cluster: str) -> str:
    """The database on every server of `cluster` (ON CLUSTER DDL names it on each)."""
    return CREATE_DATABASE.format(
        database=identifier(database, "database"), cluster=identifier(cluster)
    )


def _settings(values: dict[str, int]) -> str:
    return ", ".join(f"{name} = {value}" for name, value in values.items())


def _create_table(found: re.Match[str], cluster: str) -> list[str]:
    name, exists, body = found["name"], found["exists"] or "", found["body"]
    engine = _ENGINE.search(body)
    key = _FIRST_SORT_COLUMN.search(body)
    if engine is None or engine["engine"].startswith("Replicated") or key is None:
        raise ValueError(f"no cluster form for table {name}: a MergeTree with ORDER BY (column, …)")
    path = REPLICA_PATH.format(table=local(name))
    args = ", ".join(
        [f"'{path}'", f"'{REPLICA_NAME}'", *([engine["args"]] if engine["args"] else [])]
    )
    body = (
        body[: engine.start()]
        + f"ENGINE = Replicated{engine['engine']}({args})"
        + body[engine.end() :]
    )
    body = _OLD_WINDOW.sub(
        _settings(
            {
                "replicated_deduplication_window": REPLICATED_DEDUP_WINDOW,
                "replicated_deduplication_window_seconds": DEDUP_WINDOW_SECONDS,
            }
        ),
        body,
    )
    shards = (
        f"CREATE TABLE {exists}{name} ON CLUSTER {cluster}\n"
        f"AS {local(name)}\n"
        f"ENGINE = Distributed('{cluster}', currentDatabase(), '{local(name)}',"
        f" cityHash64({key['key']}))"
    )
    return [f"CREATE TABLE {exists}{local(name)} ON CLUSTER {cluster}{body}", shards]


_JOIN = re.compile(r"(?<!ARRAY) JOIN ")


def _create_view(found: re.Match[str], cluster: str) -> list[str]:
    select = found["select"]
    if _JOIN.search(select):  # a join reads other shards; ARRAY JOIN reads the row
        raise ValueError(f"no cluster form for view {found['name']}: it joins")
    select = _SOURCE.sub(lambda source: f"FROM {local(source[1])}", select)
    return [
        f"CREATE MATERIALIZED VIEW {found['exists'] or ''}{found['name']} ON CLUSTER {cluster}"
        f" TO {local(found['target'])} AS{select}"
    ]


def _alter(found: re.Match[str], cluster: str) -> list[str]:
    name, clauses = found["name"], found["clauses"]
    kinds = {bool(_COLUMN_CLAUSE.match(clause.strip())) for clause in _top_level(clauses)}
    shard_local = f"ALTER TABLE {local(name)} ON CLUSTER {cluster}{clauses}"
    if kinds == {False}:
        return [shard_local]
    if kinds != {True}:
        raise ValueError(f"no cluster form for ALTER TABLE {name}: split columns from the rest")
    shards = f"ALTER TABLE {name} ON CLUSTER {cluster}{clauses}"
    if re.search(r"\bDROP COLUMN\b", clauses):
        return [shards, shard_local]
    return [shard_local, shards]


def _top_level(clauses: str) -> list[str]:
    """ALTER clauses split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for position, char in enumerate(clauses):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(clauses[start:position])
            start = position + 1
    return [*parts, clauses[start:]]


def _drop(found: re.Match[str], cluster: str) -> list[str]:
    kind, exists, name = found["kind"], found["exists"] or "", found["name"]
    dropped = f"DROP {kind} {exists}{name} ON CLUSTER {cluster} SYNC"
    if kind == "VIEW":
        return [dropped]
    return [dropped, f"DROP TABLE {exists}{local(name)} ON CLUSTER {cluster} SYNC"]


def _insert(found: re.Match[str], cluster: str) -> list[str]:
    del cluster  # the insert goes through the Distributed table of today's name
    settings = ", ".join(
        part for part in (found["settings"], _settings(MIGRATION_INSERT_SETTINGS)) if part
    )
    separator = "\n" if found["settings"] else " "
    into = f"{found['name']}{found['columns'] or ''}"
    return [f"INSERT INTO {into}{separator}SETTINGS {settings}{found['rest']}"]

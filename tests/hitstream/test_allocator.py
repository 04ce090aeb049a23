"""The embedded engine's tuning: a process that only consumes gives freed memory back and
runs two merges at once (hitstream/connections.py tune_allocator and engine_options,
hitstream/cli.py engine_decay_ms and engine_merges)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.settings import Settings
from hitstream.app import ALL_ROLES, Role
from hitstream.cli import engine_decay_ms, engine_merges
from hitstream.connections import (
    ALLOCATOR_VARIABLE,
    CONSUMER_DECAY_MS,
    CONSUMER_MERGES,
    tune_allocator,
)

# In a fresh process (chdb reads the variable once, when it is loaded): tune, load the
# engine, build a large hash set, let a second pass, and print the private memory (MB).
PROBE = """
import sys, time
from hitstream.connections import tune_allocator
tune_allocator(None if sys.argv[1] == "-" else int(sys.argv[1]))
import chdb
def private():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1]) // 1024
engine = chdb.connect(":memory:")
engine.query("SELECT uniqExact(number) FROM numbers(10000000) SETTINGS max_threads = 1")
time.sleep(1.5)
engine.query("SELECT 1")
print(private())
"""


def _probe(source: str, *args: str) -> list[str]:
    """Run `source` in a fresh Python (without an operator's allocator variable) and
    return the words it printed."""
    env = {k: v for k, v in os.environ.items() if k != ALLOCATOR_VARIABLE}
    done = subprocess.run(
        [sys.executable, "-c", source, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _private_after(decay: str) -> int:
    return int(_probe(PROBE, decay)[-1])


@pytest.mark.e2e
def test_a_tuned_engine_gives_freed_memory_back_and_an_untuned_one_keeps_it() -> None:
    kept, given_back = _private_after("-"), _private_after(str(CONSUMER_DECAY_MS))
    assert given_back < 150, given_back
    assert kept > given_back + 150, (kept, given_back)


def test_only_a_process_that_only_consumes_is_tuned_unless_set() -> None:
    settings = Settings(redis_url="redis://unused")
    assert engine_decay_ms(settings, frozenset({Role.CONSUME})) == CONSUMER_DECAY_MS
    assert engine_decay_ms(settings, ALL_ROLES) is None
    assert engine_decay_ms(settings, frozenset({Role.REPORT})) is None
    chosen = settings.model_copy(update={"engine_memory_decay_ms": 1000})
    assert engine_decay_ms(chosen, ALL_ROLES) == 1000
    assert engine_decay_ms(chosen, frozenset({Role.INGEST})) is None  # no engine in it
    named = settings.model_copy(update={"clickhouse_url": "chdb:///var/lib/hitstream/ch"})
    assert engine_decay_ms(named, frozenset({Role.CONSUME})) == CONSUMER_DECAY_MS
    server = settings.model_copy(update={"clickhouse_url": "http://clickhouse:8123"})
    assert engine_decay_ms(server, frozenset({Role.CONSUME})) is None
    assert engine_merges(settings, frozenset({Role.CONSUME})) == CONSUMER_MERGES
    assert engine_merges(settings, ALL_ROLES) is None
    assert engine_merges(settings.model_copy(update={"engine_merges": 3}), ALL_ROLES) == 3
    assert engine_merges(server, frozenset({Role.CONSUME})) is None


# In a fresh process (chdb opens one engine a process, with the options of the first
# client): open the embedded engine as hitstream does, and print its merge pool.
MERGES_PROBE = """
import sys
from foundation.settings import Settings
from hitstream.connections import clickhouse_client
merges = None if sys.argv[2] == "-" else int(sys.argv[2])
settings = Settings(clickhouse_url=f"chdb://{sys.argv[1]}", engine_merges=merges)
client = clickhouse_client(settings)
print(*client.query(
    "SELECT value FROM system.server_settings WHERE name IN"
    " ('background_pool_size', 'background_merges_mutations_concurrency_ratio') ORDER BY name"
).result_columns[0])
"""


@pytest.mark.e2e
@pytest.mark.parametrize(("merges", "ratio_and_pool"), [("2", ["1", "2"]), ("-", ["2", "2"])])
def test_an_engine_opened_with_a_merge_count_runs_that_many_merges_at_once(
    tmp_path: Path, merges: str, ratio_and_pool: list[str]
) -> None:
    assert _probe(MERGES_PROBE, str(tmp_path / "ch"), merges) == ratio_and_pool


def test_an_operators_own_allocator_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOCATOR_VARIABLE, "narenas:2")
    tune_allocator(250)
    assert os.environ[ALLOCATOR_VARIABLE] == "narenas:2"
    monkeypatch.delenv(ALLOCATOR_VARIABLE)
    tune_allocator(None)
    assert ALLOCATOR_VARIABLE not in os.environ
    tune_allocator(250)
    assert os.environ[ALLOCATOR_VARIABLE] == "dirty_decay_ms:250,muzzy_decay_ms:0"

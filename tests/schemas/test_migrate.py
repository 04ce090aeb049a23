"""Migrations apply in order, are idempotent, roll back, and keep the raw TTL current."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from reporting.daily import VISIT_VALUES
from schemas import entry
from schemas.event import ENGAGEMENT, PAGEVIEWS
from schemas.migrate import MIGRATIONS_DIR, applied_versions, load_migrations, migrate, rollback
from tests.helpers import DAY0, DAY1, at, seed_visits, write


def tables(ch: Client) -> set[str]:
    return {
        row[0]
        for row in ch.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
    }


def test_files_are_numbered_and_reversible() -> None:
    migrations = load_migrations(raw_ttl_days=30)
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) == list(range(1, len(versions) + 1))
    assert all(m.up and m.down for m in migrations)


def test_migrate_is_idempotent(ch: Client) -> None:
    first = migrate(ch, raw_ttl_days=90)
    assert first == [m.version for m in load_migrations(90)]
    assert migrate(ch, raw_ttl_days=90) == []
    assert {"events", "daily_totals", "daily_totals_mv", "daily_pages", "daily_pages_mv"} <= tables(
        ch
    )


@pytest.mark.slow
def test_rollback_and_reapply(ch: Client) -> None:
    applied = migrate(ch, raw_ttl_days=90)
    later = [v for v in applied if v > 1]
    assert rollback(ch, to_version=1, raw_ttl_days=90) == later[::-1]
    assert applied_versions(ch) == {1}
    assert "daily_pages" not in tables(ch) and "events" in tables(ch)
    assert migrate(ch, raw_ttl_days=90) == later


def test_changed_raw_ttl_is_applied(ch: Client) -> None:
    migrate(ch, raw_ttl_days=90)
    migrate(ch, raw_ttl_days=7)
    engine = ch.query(
        "SELECT engine_full FROM system.tables"
        " WHERE database = currentDatabase() AND name = 'events'"
    ).result_rows[0][0]
    assert "toIntervalDay(7)" in engine


def test_raw_ttl_zero_keeps_raw_events_forever(ch: Client) -> None:
    def engine() -> str:
        return str(
            ch.query(
                "SELECT engine_full FROM system.tables"
                " WHERE database = currentDatabase() AND name = 'events'"
            ).result_rows[0][0]
        )

    migrate(ch, raw_ttl_days=0)
    assert " TTL " not in engine()
    ch.command(
        "INSERT INTO events (event_id, site_id, event_type, ts) "
        "VALUES (generateUUIDv4(), 's', 'pageview', '1971-01-01 00:00:00')"
    )
    ch.command("OPTIMIZE TABLE events FINAL")
    assert ch.query("SELECT count() FROM events").result_rows[0][0] == 1
    migrate(ch, raw_ttl_days=30)
    assert "toIntervalDay(30)" in engine()


# The tables the consumer's inserts fill: events and the views' targets (0025).
INSERTED = ("events", "sessions", "daily_totals", "daily_pages", "daily_visits")


def test_the_tables_inserts_fill_merge_in_small_blocks_and_keep_every_row(ch: Client) -> None:
    """0025: events and the views' targets merge 1,024 rows at a time, events vertically;
    0026: the visits compress in blocks of at most 64 KiB; the seeded visits, merged, count
    as they did before."""
    migrate(ch, raw_ttl_days=90)
    engines = dict(
        ch.query(
            "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
    )
    for table in INSERTED:
        assert "merge_max_block_size = 1024" in engines[table], table
    assert "vertical_merge_algorithm_min_rows_to_activate = 1" in engines["events"]
    assert "vertical_merge_algorithm_min_columns_to_activate = 1" in engines["events"]
    assert "max_compress_block_size = 65536" in engines["sessions"]
    assert "min_compress_block_size = 16384" in engines["sessions"]
    seed_visits(ch, "merged")
    counts = (
        "SELECT (SELECT count() FROM events WHERE site_id = 'merged'),"
        " (SELECT count() FROM sessions FINAL WHERE site_id = 'merged'),"
        " (SELECT sum(views) FROM daily_pages WHERE site_id = 'merged'),"
        " (SELECT uniqExactMerge(visitors) FROM daily_totals WHERE site_id = 'merged')"
    )
    before = ch.query(counts).result_rows
    for table in INSERTED:
        ch.command(f"OPTIMIZE TABLE {table} FINAL")
    assert ch.query(counts).result_rows == before == [(9, 4, 9, 3)]


def test_daily_pages_take_the_views_and_visitors_of_daily_paths_once(ch: Client) -> None:
    """0013 copies daily_paths' views and adds the visitors of the raw events still held;
    its statements run twice (a crash before the version is recorded) count once."""
    migrate(ch, raw_ttl_days=0)
    rollback(ch, to_version=12, raw_ttl_days=0)
    ch.command(
        "INSERT INTO events (event_id, site_id, event_type, path, ts, visitor_id)"
        " SELECT generateUUIDv4(number), 's', 'pageview', concat('/', toString(number % 2)),"
        " toDateTime64('2024-06-01 10:00:00', 3) + number, number % 3 + 1 FROM numbers(12)"
    )
    # A day whose raw events expired: only its views are left, in daily_paths.
    ch.command("INSERT INTO daily_paths VALUES ('s', '2024-05-01', 'pageview', '/0', 5)")
    migrate(ch, raw_ttl_days=0)
    rollback(ch, to_version=13, raw_ttl_days=0)  # as it was when 0013 ran
    (up,) = [m for m in load_migrations(0) if m.version == 13]
    ch.command(
        "CREATE TABLE daily_paths (site_id String, day Date, event_type String,"
        " path String, views UInt64) ENGINE = SummingMergeTree ORDER BY path"
    )
    ch.command("INSERT INTO daily_paths VALUES ('s', '2024-05-01', 'pageview', '/0', 5)")
    for statement in up.up:
        ch.command(statement)
    pages = ch.query(
        "SELECT day, path, sum(views), uniqExactMerge(visitors) FROM daily_pages"
        " GROUP BY day, path ORDER BY day, path"
    ).result_rows
    assert [(str(d), p, v, u) for d, p, v, u in pages] == [
        ("2024-05-01", "/0", 5, 0),
        ("2024-06-01", "/0", 6, 3),
        ("2024-06-01", "/1", 6, 3),
    ]
    assert "daily_paths" not in tables(ch) and "daily_paths_mv" not in tables(ch)


# What each dimension of daily_visits that queries read holds, read from `sessions` (a
# visit's columns; the channel's: its rules' inputs).
_INPUTS = "source, utm_medium, utm_source, utm_campaign, click_id_param"
SESSION_VALUES = {stored: f"toString({stored})" for stored, _ in VISIT_VALUES.values()} | {
    "channel": f"toJSONString(arrayMap(x -> toString(x), [{_INPUTS}]))"
}


def test_daily_visits_count_the_visits_stored_before_once(ch: Client) -> None:
    """0024 counts the visits whose first events the raw events hold from them (numbers
    included), and those of days retention dropped from `sessions`; its statements run
    twice (a crash before the version is recorded) count once."""
    migrate(ch, raw_ttl_days=0)
    rollback(ch, to_version=23, raw_ttl_days=0)
    seed_visits(ch, "s")  # DAY0 and DAY1
    day2 = DAY1 + (DAY1 - DAY0)
    numbered = (day2.toordinal() - DAY0.toordinal()) * entry.NUMBER_DAY + 1
    write(
        ch,
        "s",
        {"v": 4, "no": numbered, "ts": at(day2, "08:00:00"), "source": "Google", "country": "FR"},
        {"v": 5, "ts": at(day2, "08:30:00"), "path": "/pricing"},
    )
    # Retention dropped DAY0's raw events: the first day held whole is DAY1's next.
    ch.command(f"DELETE FROM events WHERE toDate(ts) = '{DAY0}'")
    (up,) = [m for m in load_migrations(0) if m.version == 24]
    for _ in range(2):
        for statement in up.up:
            ch.command(statement)
    for dimension, value in SESSION_VALUES.items():
        stored = ch.query(
            "SELECT day, value, groupBitmapMerge(numbered), uniqExactMerge(visitors)"
            " FROM daily_visits WHERE dimension = {d:String} GROUP BY day, value"
            " ORDER BY day, value",
            parameters={"d": dimension},
        ).result_rows
        by_id = ch.query(
            f"SELECT toDate(start), {value} AS value, uniqExact(visitor_id)"
            " FROM sessions FINAL GROUP BY 1, 2 ORDER BY 1, 2"
        ).result_rows
        assert [(d, v, n + u) for d, v, n, u in stored] == by_id, dimension
        # The visit the raw events still hold is counted by its number.
        assert [n for d, _, n, _ in stored if d == day2 and n] == [1], dimension


def test_the_views_take_the_event_names_from_schemas_event() -> None:
    """One owner for the page-view and engagement names: the migrations' SQL holds
    placeholders, filled from schemas/event.py, never a quoted copy of a name."""
    written = "\n".join(
        line
        for path in MIGRATIONS_DIR.glob("*.sql")
        for line in path.read_text().splitlines()
        if not line.lstrip().startswith("--")
    )
    for name in (*PAGEVIEWS, ENGAGEMENT):
        assert f"'{name}'" not in written
    rendered = "\n".join(s for m in load_migrations(raw_ttl_days=30) for s in m.up)
    assert "countIf(event_type IN ('pageview', 'page_view')) AS pageviews" in rendered
    assert "event_type != 'engagement'" in rendered
    assert "{pageview_names}" not in rendered and "{engagement_name}" not in rendered

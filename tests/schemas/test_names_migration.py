"""Migration 0018 gives stored rows Plausible's names (schemas/names.py) in raw events and
in visits, runs again without effect, and its down half gives the former names back."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from schemas.migrate import load_migrations, migrate, rollback

# What ingest stored before (ua-parser's families, lower-case devices, hitstream's former
# source names, referrers with www. and a trailing slash), and what Plausible names it.
# Columns: browser, browser_version, os, device, source, referrer.
ROWS = [
    (
        ("Chrome", "124.0", "Windows", "desktop", "Google", "www.google.com"),
        ("Chrome", "124.0", "Windows", "Desktop", "Google", "google.com"),
    ),
    (
        ("Chrome", "124.0", "Mac OS X", "desktop", "Yahoo", "search.yahoo.com"),
        ("Chrome", "124.0", "Mac", "Desktop", "Yahoo!", "search.yahoo.com"),
    ),
    (
        ("Mobile Safari", "17.4", "iOS", "mobile", "VK", "vk.com/feed/"),
        ("Safari", "17.4", "iOS", "Mobile", "Vkontakte", "vk.com/feed"),
    ),
    (
        ("Mobile Safari", "17.4", "iOS", "tablet", "YouTube", "www.youtube.com/watch"),
        ("Safari", "17.4", "iPadOS", "Tablet", "Youtube", "youtube.com/watch"),
    ),
    (
        ("Chrome Mobile iOS", "124.0", "iOS", "mobile", "Gemini", ""),
        ("Chrome", "124.0", "iOS", "Mobile", "Google Gemini", ""),
    ),
    (
        ("Chrome Mobile", "124.0", "Android", "mobile", "Copilot", ""),
        ("Chrome", "124.0", "Android", "Mobile", "Microsoft Copilot", ""),
    ),
    (
        ("Chrome", "124.0", "Android", "tablet", "X (Twitter)", "t.co/abc"),
        ("Chrome", "124.0", "Android", "Tablet", "X (Twitter)", "t.co/abc"),
    ),
    (
        ("Firefox", "125.0", "Linux", "desktop", "example.org", "example.org/a/b/"),
        ("Firefox", "125.0", "GNU/Linux", "Desktop", "example.org", "example.org/a/b"),
    ),
    (
        ("Firefox Mobile", "125.0", "Android", "mobile", "", ""),
        ("Firefox", "125.0", "Android", "Mobile", "", ""),
    ),
    (
        ("Firefox iOS", "125.0", "iOS", "mobile", "", ""),
        ("Firefox", "125.0", "iOS", "Mobile", "", ""),
    ),
    (
        ("Edge", "124.0", "Windows", "desktop", "", ""),
        ("Microsoft Edge", "124.0", "Windows", "Desktop", "", ""),
    ),
    (
        ("Samsung Internet", "24.0", "Android", "mobile", "", ""),
        ("Samsung Browser", "24.0", "Android", "Mobile", "", ""),
    ),
    (
        ("Opera Mobile", "81.1", "Android", "mobile", "", ""),
        ("Opera", "81.1", "Android", "Mobile", "", ""),
    ),
    (
        ("IE", "11.0", "Windows", "desktop", "", ""),
        ("Internet Explorer", "11.0", "Windows", "Desktop", "", ""),
    ),
    (
        ("Chrome Mobile WebView", "124.0", "Android", "mobile", "", ""),
        ("Mobile App", "", "Android", "Mobile", "", ""),
    ),
    (
        ("Chrome", "124.0", "Chrome OS", "desktop", "", ""),
        ("Chrome", "124.0", "Chrome OS", "Desktop", "", ""),
    ),
    (("", "", "", "", "", ""), ("", "", "", "", "", "")),
]
# What the down half cannot tell back: a mobile app's version, a referrer's www. and
# trailing slash.
RESTORED = [
    (
        old[0],
        new[1] if new[0] == "Mobile App" else old[1],
        old[2],
        old[3],
        old[4],
        new[5],
    )
    for old, new in ROWS
]
COLUMNS = "browser, browser_version, os, device, source, referrer"


def stored(ch: Client, table: str) -> list[tuple[str, ...]]:
    """Each visit's columns, in the order of ROWS (the visit id is the row's index)."""
    query = (
        f"SELECT {COLUMNS} FROM events ORDER BY session_id"
        if table == "events"
        else f"SELECT {COLUMNS} FROM sessions FINAL ORDER BY session_id"
    )
    return [tuple(row) for row in ch.query(query).result_rows]


def test_stored_rows_answer_with_plausibles_names_and_the_down_half_restores_them(
    ch: Client,
) -> None:
    migrate(ch, raw_ttl_days=0)
    rollback(ch, to_version=17, raw_ttl_days=0)
    later = [m.version for m in load_migrations(0) if m.version > 17]  # 18 and any after
    for index, (old, _) in enumerate(ROWS, start=1):
        ch.command(
            "INSERT INTO events (event_id, site_id, event_type, path, ts, visitor_id,"
            f" session_id, {COLUMNS}) VALUES (generateUUIDv4(), 's', 'pageview', '/',"
            " fromUnixTimestamp64Milli(toInt64({index:UInt64}), 'UTC'), {index:UInt64},"
            " {index:UInt64}, {b:String}, {bv:String}, {os:String}, {d:String},"
            " {s:String}, {r:String})",
            parameters=dict(zip(("b", "bv", "os", "d", "s", "r"), old, strict=True))
            | {"index": index},
        )
    olds = [old for old, _ in ROWS]
    assert stored(ch, "events") == stored(ch, "sessions") == olds

    assert migrate(ch, raw_ttl_days=0) == later
    news = [new for _, new in ROWS]
    assert stored(ch, "events") == stored(ch, "sessions") == news
    (step,) = [m for m in load_migrations(0) if m.version == 18]
    for statement in step.up:  # again, as after a crash before the version is recorded
        ch.command(statement)
    assert stored(ch, "events") == stored(ch, "sessions") == news

    assert rollback(ch, to_version=17, raw_ttl_days=0) == later[::-1]
    assert stored(ch, "events") == stored(ch, "sessions") == RESTORED

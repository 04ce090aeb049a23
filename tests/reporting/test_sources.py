"""The row selects unioned for the GROUP BY (no engine)."""

from __future__ import annotations

from reporting.sources import WITH, rows
from reporting.tables import Tables


def test_event_rows_read_the_events_and_count_their_visitors() -> None:
    tables = Tables(None, event_rows=True, visit_rows=False, events_from="joined")
    out = rows(tables, ["path"], ["path"], "(x)")
    assert out.parts == [
        "SELECT 0 AS kind, path AS r0, visitor_id, session_id, user_id AS user, "
        "toUInt64(pv) AS pageviews, toUInt64(1) AS nevents, toUInt64(0) AS spv, false AS bounce, "
        "toInt64(0) AS dur FROM joined WHERE (x)"
    ]
    assert out.counted == "joined WHERE (x)"


def test_visit_rows_match_on_their_own_dimensions_without_event_filters() -> None:
    out = rows(Tables(None, visit_rows=True), ["ts_e"], ["ts_v", "v_os"], "(y)")
    assert out.parts == [
        "SELECT 1 AS kind, ts_v AS r0, v_os AS r1, visitor_id, session_id, v_user AS user, "
        "v_pageviews AS pageviews, v_events AS nevents, v_pageviews AS spv, v_bounce AS bounce, "
        "v_duration AS dur FROM visits WHERE (y)"
    ]
    assert out.counted == f"({out.parts[0]})"


def test_with_event_filters_a_visit_matches_by_one_of_its_events() -> None:
    tables = Tables(None, event_rows=True, visit_rows=True, event_filters=True)
    event_rows, visit_rows = rows(tables, [], [], "(z)").parts
    assert event_rows.startswith("SELECT 0 AS kind, visitor_id,")
    assert visit_rows.endswith(
        "FROM visits WHERE (visitor_id, session_id) IN "
        "(SELECT visitor_id, session_id FROM ev WHERE (z))"
    )


def test_the_common_table_expressions() -> None:
    assert WITH.startswith("WITH \nev AS (")
    assert "\nvisits AS (" in WITH and "\njoined AS (" in WITH
    assert "v_entry_page" in WITH and "v_exit_page" in WITH

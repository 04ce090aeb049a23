"""The row selects unioned for the GROUP BY (no engine)."""

from __future__ import annotations

from reporting.sources import DERIVED, rows, with_clause
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
    common = with_clause("SELECT v_exit_page, v_bounce FROM joined WHERE v_source = 'x'")
    assert common.startswith("WITH \nev AS (")
    assert "\nvisits AS (" in common and "\njoined AS (" in common
    assert "finalizeAggregation(exit_page) AS v_exit_page" in common
    assert "pageviews < 2 AND interactions = 0 AS v_bounce" in common
    assert "source AS v_source" in common


def test_the_visits_carry_only_the_columns_a_statement_names() -> None:
    # Each column is parsed and analysed, read or not.
    bare = with_clause("SELECT count() FROM visits")
    assert "SELECT visitor_id, session_id\n    FROM sessions FINAL" in bare
    some = with_clause("SELECT v_duration, v_country FROM visits")
    assert "SELECT visitor_id, session_id, toInt64(" in some and "AS v_duration" in some
    assert "country AS v_country\n" in some
    assert some.count(" AS v_") == 2


def test_a_statement_carries_only_the_expressions_it_reads() -> None:
    # The engine parses and analyses every expression of the WITH, read or not.
    assert with_clause("SELECT sum(views) FROM daily_visits WHERE day = today()") == ""
    events_only = with_clause("SELECT count() FROM ev")
    assert events_only.startswith("WITH \nev AS (") and "visits AS" not in events_only
    visits_only = with_clause("SELECT count() FROM visits")
    assert "\nvisits AS (" in visits_only and "ev AS" not in visits_only
    both = with_clause("SELECT count() FROM visits WHERE x IN (SELECT y FROM ev)")
    assert "\nev AS (" in both and "\nvisits AS (" in both and "joined AS" not in both


def test_the_visits_carry_the_derived_dimensions_a_query_names() -> None:
    # The engine parses all of a query's text: the long derived expressions (channel's
    # rules, the country names) are in it only when the query names them.
    plain = with_clause("SELECT uniqExact(visitor_id) FROM joined WHERE v_source = 'x'")
    assert all(f"AS v_{name}" not in plain for name in DERIVED)
    assert DERIVED["channel"] not in plain and DERIVED["country_name"] not in plain
    named = with_clause("SELECT v_channel, v_country_name FROM joined")
    assert f"{DERIVED['channel']} AS v_channel" in named
    assert f"{DERIVED['country_name']} AS v_country_name" in named
    assert "AS v_entry_page_hostname" not in named

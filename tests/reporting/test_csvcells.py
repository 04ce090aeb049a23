"""The CSV cell rule (reporting/csvcells.py), in Python and as the engine's expression."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from reporting import csvcells

TEXTS = [
    "=HYPERLINK(\"https://evil.example\",\"x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)",
    "\tx", "\r=1", "\n=1", "\uff1d1", "\uff0b1", "\uff0d1", "\uff201",
    "", "/pricing", "Google", "a=b", "'already", "\u00e9t\u00e9", "1-2",
]  # fmt: skip


def test_text_a_spreadsheet_would_evaluate_is_quoted_and_numbers_are_not() -> None:
    assert [csvcells.cell(t) for t in TEXTS[:11]] == ["'" + t for t in TEXTS[:11]]
    assert [csvcells.cell(t) for t in TEXTS[11:]] == TEXTS[11:]
    assert [csvcells.cell(n) for n in (-12, -0.5, 3, None)] == [-12, -0.5, 3, None]


def test_the_engine_expression_applies_the_same_rule(ch: Client) -> None:
    sql = f"SELECT {csvcells.cell_sql('t')} FROM (SELECT arrayJoin({{texts:Array(String)}}) AS t)"
    rows = ch.query(sql, parameters={"texts": TEXTS, **csvcells.SQL_PARAMETERS}).result_rows
    assert [row[0] for row in rows] == [csvcells.cell(t) for t in TEXTS]

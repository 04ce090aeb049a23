"""CSV cells a spreadsheet cannot run: the one rule for every CSV hitstream writes.

Event values (paths, sources, UTM tags, props, event names) are sent by anyone who can
send an event; a cell such as `=HYPERLINK(...)` or `+cmd|' /C calc'!A0` would be
evaluated as a formula by the spreadsheet that opens the download (OWASP, "CSV
Injection"). A text cell starting with one of FORMULA_STARTS is prefixed with a single
quote, which spreadsheets show as text; numbers (a metric, a negative revenue) are
never text cells and stay as they are.
"""

from __future__ import annotations

from typing import Any

# The leading characters spreadsheets treat as a formula (OWASP's list: = + - @ tab CR),
# with LF and the full-width forms some spreadsheets also take for = + - @.
FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
QUOTE = "'"


def cell(value: Any) -> Any:
    """A value as written to a CSV cell: text a spreadsheet would evaluate is quoted."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return QUOTE + value
    return value


def cell_sql(column: str) -> str:
    """The same rule as an engine expression on a String column, for CSV the engine writes
    (bind SQL_PARAMETERS with it)."""
    return (
        f"if(substringUTF8({column}, 1, 1) IN {{csv_formula_starts:Array(String)}}, "
        f"concat({{csv_quote:String}}, {column}), {column})"
    )


SQL_PARAMETERS: dict[str, Any] = {
    "csv_formula_starts": sorted(FORMULA_STARTS),
    "csv_quote": QUOTE,
}

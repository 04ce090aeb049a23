"""The rows a query groups. Visits are told at ingest (ingest/lua/visits.lua: a visitor's
events with no gap of 30 minutes or more; their id is the rule schemas/entry.py states)
and kept one row per visit in `sessions` (migration 0012). Matching events are rows of
kind 0; matching visits rows of kind 1. A visit matches when its dimensions match the
visit filters and, if there are event filters, at least one of its events matches them.
A visit's dimensions are those of the event that opened it; its exit page is that of its
last event."""

from __future__ import annotations

import re
from dataclasses import dataclass

from reporting.tables import Tables
from schemas.channels import CHANNEL_SQL
from schemas.countries import country_name_sql
from schemas.entry import VISIT_OPENED
from schemas.query import VISIT_DIMENSIONS

# A visit row's revenue amount: none (the type of events.revenue_amount, nullable).
NO_AMOUNT = "CAST(NULL, 'Nullable(Decimal(18, 3))')"

# The site's events of the range (engagement events only carry engagement data).
EVENTS = """
ev AS (
    SELECT visitor_id, session_id, ts, path, event_type, hostname, props, user_id,
        revenue_amount, revenue_currency,
        event_type IN {pageviews:Array(String)} AS pv
    FROM events
    WHERE site_id = {site_id:String}
      AND ts >= {t0:DateTime64(3, 'UTC')} AND ts < {t1:DateTime64(3, 'UTC')}
      AND event_type != {engagement:String}
)"""

# Visit dimensions that are no column of `sessions`, and their expression: the entry
# page's hostname is the visit's (its opener's), the exit page's that of its last event
# (migration 0020; '' for visits stored before it).
DERIVED = {
    "country_name": country_name_sql("country"),
    "channel": CHANNEL_SQL,
    "entry_page_hostname": "hostname",
    "exit_page_hostname": "finalizeAggregation(exit_hostname)",
}


# A visit's columns (v_<name>) that are no dimension: when it opened, its counts, whether
# it bounced, how long it lasted.
VISIT_FACTS = {
    "opened": VISIT_OPENED,
    "pageviews": "pageviews",
    "events": "events",
    "user": "user_id",
    "bounce": "pageviews < 2 AND interactions = 0",
    "duration": "toInt64(toUnixTimestamp64Milli(end) - toUnixTimestamp64Milli(start))",
    "exit_page": "finalizeAggregation(exit_page)",
}
# Every column a visit row can carry, as v_<name>: its facts, then its dimensions.
VISIT_COLUMNS = {
    **VISIT_FACTS,
    **{c: DERIVED.get(c, c) for c in VISIT_DIMENSIONS.values() if c not in VISIT_FACTS},
}


def _visit_columns(named: set[str]) -> str:
    """The visits' columns the statement names, as v_<name>. The engine parses and
    analyses all of a query's text, used or not: with every derived expression (channel's
    rules, the country names) a realtime query's SQL was 18.6 KB and spent about 20 ms
    there, and the plain columns it did not read cost the mix's queries about a tenth of
    their CPU (bench/README.md, seventh session)."""
    return "".join(f", {VISIT_COLUMNS[c]} AS v_{c}" for c in VISIT_COLUMNS if c in named)


def _visits(columns: str) -> str:
    """The site's visits opened in the range (a visit's id is the time of its first
    event: VISIT_OPENED), with `columns` after their keys."""
    return f"""
visits AS (
    SELECT visitor_id, session_id{columns}
    FROM sessions FINAL
    WHERE site_id = {{site_id:String}}
      AND toDate({VISIT_OPENED})
          BETWEEN toDate({{t0:DateTime64(3, 'UTC')}}) AND toDate({{t1:DateTime64(3, 'UTC')}})
      AND session_id >= {{t0_ms:UInt64}} AND session_id < {{t1_ms:UInt64}}
)"""


# Events with their visit's dimensions (events without a visit get empty ones).
JOINED = """
joined AS (
    SELECT * FROM ev LEFT JOIN visits USING (visitor_id, session_id)
)"""

_VISIT_NAME = re.compile(r"\bv_(\w+)")
# The expressions' names as a statement reads them (`daily_visits` is not `visits`).
_READS = re.compile(r"\b(ev|visits|joined)\b")


def with_clause(body: str) -> str:
    """The common table expressions the statement `body` reads, '' for none (a query
    answered from a daily aggregate): the engine parses and analyses every one whether
    it is read or not: a fifth to a third of such a query's CPU (bench/README.md,
    seventh session). The visits carry the columns `body` names (as v_<name>)."""
    reads = set(_READS.findall(body))
    if "joined" in reads:
        reads |= {"ev", "visits"}
    named = set(_VISIT_NAME.findall(body))
    common = [
        *([EVENTS] if "ev" in reads else []),
        *([_visits(_visit_columns(named))] if "visits" in reads else []),
        *([JOINED] if "joined" in reads else []),
    ]
    return "WITH " + ",".join(common) if common else ""


@dataclass(frozen=True)
class Rows:
    """The row selects to union, and the rows whose visitors are the breakdown's whole
    (percentage's denominator)."""

    parts: list[str]
    counted: str


def rows(
    tables: Tables, event_dims: list[str], visit_dims: list[str], match: str, revenue: str = ""
) -> Rows:
    """Event rows and/or visit rows as `tables` says, each dimension's raw value as r<i>;
    `match` is the filters' condition over a joined event row; `revenue`, when revenue
    metrics are asked, the amount an event row counts, as `rev` (NULL on visit rows)."""
    parts = []
    event_rev = f", {revenue} AS rev" if revenue else ""
    visit_rev = f", {NO_AMOUNT} AS rev" if revenue else ""
    if tables.event_rows:
        parts.append(_event_rows(event_dims, tables.events_from, match, event_rev))
    if tables.visit_rows:
        parts.append(_visit_rows(visit_dims, _visits_where(tables, match), visit_rev))
    if tables.event_rows:
        return Rows(parts, f"{tables.events_from} WHERE {match}")
    return Rows(parts, f"({parts[-1]})" if parts else "")


def _raw(dims: list[str]) -> str:
    return "".join(f"{e} AS r{i}, " for i, e in enumerate(dims))


def _event_rows(dims: list[str], events_from: str, match: str, rev: str) -> str:
    return (
        f"SELECT 0 AS kind, {_raw(dims)}visitor_id, session_id, user_id AS user, "
        "toUInt64(pv) AS pageviews, toUInt64(1) AS nevents, toUInt64(0) AS spv, false AS bounce, "
        f"toInt64(0) AS dur{rev} "
        f"FROM {events_from} WHERE {match}"
    )


def _visits_where(tables: Tables, match: str) -> str:
    """Visits matching the filters: with event filters, the visits with at least one
    matching event (seen with its visit's dimensions)."""
    if not tables.event_filters:
        return match
    return (
        "(visitor_id, session_id) IN "
        f"(SELECT visitor_id, session_id FROM {tables.events_from} WHERE {match})"
    )


def _visit_rows(dims: list[str], where: str, rev: str) -> str:
    return (
        f"SELECT 1 AS kind, {_raw(dims)}visitor_id, session_id, v_user AS user, "
        "v_pageviews AS pageviews, v_events AS nevents, v_pageviews AS spv, v_bounce AS bounce, "
        f"v_duration AS dur{rev} "
        f"FROM visits WHERE {where}"
    )

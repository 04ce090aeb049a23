"""Each metric's aggregate over the union of event rows (kind 0) and visit rows (kind 1),
as templates built once: `{kind}` is the kind of rows that count visitors, page views,
events and users (tables.Tables.kind); `{total}`, percentage's special part, the
visitors of the whole breakdown; `{whole}`, conversion_rate's, the visitors of the query
without its goal and property filters (Plausible's `if(T>0, round(V/T*100, 1), 0)`);
group_conversion_rate counts the converted visitors here, and `group_rate` divides them
by their group's visitors once grouped (reporting/compiler.py `per_group`). A
visit is a bounce as Plausible has it: fewer than two page views and no interactive
custom event (reporting/sources.py, migration 0021)."""

from __future__ import annotations

from reporting.tables import Tables

_TEMPLATES = {
    "visitors": "uniqExactIf(visitor_id, kind = {kind} AND visitor_id != 0)",
    "visits": "countIf(kind = 1)",
    "pageviews": "sumIf(pageviews, kind = {kind})",
    "events": "sumIf(nevents, kind = {kind})",
    "users": "uniqExactIf(user, kind = {kind} AND user != '')",
    "bounce_rate": (
        "if(countIf(kind = 1) = 0, 0, "
        "round(100 * countIf(kind = 1 AND bounce) / countIf(kind = 1), 2))"
    ),
    "visit_duration": "if(countIf(kind = 1) = 0, 0, round(avgIf(dur, kind = 1) / 1000))",
    "views_per_visit": (
        "if(countIf(kind = 1) = 0, 0, round(sumIf(spv, kind = 1) / countIf(kind = 1), 2))"
    ),
    "percentage": (
        "if({total} = 0, 0, "
        "round(100 * uniqExactIf(visitor_id, kind = {kind} AND visitor_id != 0) / {total}, 2))"
    ),
    "conversion_rate": (
        "if({whole} = 0, 0, "
        "round(100 * uniqExactIf(visitor_id, kind = {kind} AND visitor_id != 0) / {whole}, 1))"
    ),
    # The converted visitors of a group, divided by its visitors after grouping.
    "group_conversion_rate": "uniqExactIf(visitor_id, kind = {kind} AND visitor_id != 0)",
    # `rev`: the amount an event row counts (reporting/revenue.py), NULL when none.
    "total_revenue": "sumIf(rev, kind = 0)",
    "average_revenue": "avgIf(rev, kind = 0)",
}
# Plausible's group_conversion_rate: a group's converted visitors over its visitors
# without the goal and property filters, in percent to one decimal, 0 without visitors.
_GROUP_RATE = "if({group} = 0, 0, round(100 * {converted} / {group}, 1))"
# Broken down by an event dimension there are no visit rows: visits are counted from
# the events' distinct visits.
_BY_EVENTS = {"visits": "uniqExactIf((visitor_id, session_id), kind = 0 AND session_id != 0)"}
# The visitors of the whole breakdown (percentage's denominator), from the rows counted.
_TOTAL = "(SELECT uniqExactIf(visitor_id, visitor_id != 0) FROM {counted})"


def aggregate(metric: str, tables: Tables, by_events: bool, counted: str, whole: str = "") -> str:
    """The SQL of one metric; `by_events`: broken down by an event dimension; `counted`:
    the rows whose visitors percentage divides by; `whole`: those conversion_rate
    divides by."""
    template = (_BY_EVENTS if by_events else _TEMPLATES).get(metric, _TEMPLATES[metric])
    total = _TOTAL.format(counted=counted) if metric == "percentage" else ""
    converted = _TOTAL.format(counted=whole) if metric == "conversion_rate" else ""
    return template.format(kind=tables.kind, total=total, whole=converted)


def group_rate(converted: str, group: str) -> str:
    """group_conversion_rate's SQL from a group's converted visitors and its visitors."""
    return _GROUP_RATE.format(converted=converted, group=group)

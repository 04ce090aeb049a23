"""A query's grouped rows from a daily aggregate table, when tables.daily_table found one
holding the whole answer (the metrics of tables.DAILY_METRICS, at most one dimension)."""

from __future__ import annotations

from reporting.expressions import label, time_label
from reporting.model import Query
from schemas.query import EVENT_DIMENSIONS, TIME_DIMENSIONS

# Each metric the aggregates hold, merged over their rows.
METRICS = {
    "visitors": "uniqExactMerge(visitors)",
    "users": "uniqExactMerge(users)",
    "pageviews": "sumIf(views, event_type IN {pageviews:Array(String)})",
    "events": "sum(views)",
}
# Where a table holds a metric in another form: daily_pages' numbered visitors are a
# bitmap beside the state of the others, which never share a visitor (migration 0023).
TABLE_METRICS = {
    "daily_pages": {"visitors": "groupBitmapMerge(numbered) + uniqExactMerge(visitors)"},
}
# Each day/week/month bucket from the aggregates' day column.
BUCKETS = {"day": "day", "week": "toMonday(day)", "month": "toStartOfMonth(day)"}
_WHERE = (
    "WHERE site_id = {site_id:String} AND event_type != {engagement:String}\n"
    "  AND day >= toDate({t0:DateTime64(3, 'UTC')}) AND day < toDate({t1:DateTime64(3, 'UTC')})"
)


def grouped(query: Query, table: str, bucket: str | None) -> str:
    """The rows of `query` from `table`: r0/d0 for its dimension if any, m<i> its metrics."""
    metrics = METRICS | TABLE_METRICS.get(table, {})
    select = [f"{metrics[m]} AS m{i}" for i, m in enumerate(query.metrics)]
    group = ""
    if query.dimensions:
        dimension = query.dimensions[0]
        if dimension in TIME_DIMENSIONS:
            raw, labelled = BUCKETS[bucket or "day"], time_label(bucket or "day", "r0")
        else:
            raw, labelled = EVENT_DIMENSIONS[dimension], label(dimension, "r0")
        select[:0] = [f"{raw} AS r0", f"{labelled} AS d0"]
        group = "\nGROUP BY r0"
    return f"SELECT {', '.join(select)}\nFROM {table}\n{_WHERE}{group}"

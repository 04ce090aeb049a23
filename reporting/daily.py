"""A query's grouped rows from a daily aggregate table, when tables.daily_table found one
holding the whole answer (the metrics of tables.DAILY_METRICS, at most one dimension)."""

from __future__ import annotations

from reporting.expressions import label, time_label
from reporting.model import Query
from schemas.channels import channel_sql
from schemas.countries import country_name_sql
from schemas.query import EVENT_DIMENSIONS, TIME_DIMENSIONS

# Each metric the aggregates hold, merged over their rows.
METRICS = {
    "visitors": "uniqExactMerge(visitors)",
    "users": "uniqExactMerge(users)",
    "pageviews": "sumIf(views, event_type IN {pageviews:Array(String)})",
    "events": "sum(views)",
}
# Where a table holds a metric in another form: daily_pages' and daily_visits' numbered
# visitors are a bitmap beside the state of the others, which never share a visitor
# (migrations 0023, 0024).
_NUMBERED_VISITORS = {"visitors": "groupBitmapMerge(numbered) + uniqExactMerge(visitors)"}
TABLE_METRICS = {"daily_pages": _NUMBERED_VISITORS, "daily_visits": _NUMBERED_VISITORS}
# Each day/week/month bucket from the aggregates' day column.
BUCKETS = {"day": "day", "week": "toMonday(day)", "month": "toStartOfMonth(day)"}
_DAYS = "day >= toDate({t0:DateTime64(3, 'UTC')}) AND day < toDate({t1:DateTime64(3, 'UTC')})"
_SITE = "WHERE site_id = {site_id:String}"
_WHERE = f"{_SITE} AND event_type != {{engagement:String}}\n  AND {_DAYS}"

# daily_visits' rows of each visit dimension it answers (migration 0024 holds them):
# (its `dimension`, the dimension's raw value over `value`). The channel's rules run over
# its stored inputs (a JSON array), the country's name over the stored code.
_INPUTS = "JSONExtract(value, 'Array(String)')"
VISIT_VALUES = {
    **{
        f"visit:{name}": (name, "value")
        for name in (
            "entry_page", "source", "referrer", "utm_source", "utm_medium", "utm_campaign",
            "utm_term", "utm_content", "device", "browser", "os", "country",
        )
    },
    "visit:country_name": ("country", country_name_sql("value")),
    "visit:channel": ("channel", channel_sql(*(f"{_INPUTS}[{i}]" for i in range(1, 6)))),
}  # fmt: skip


def grouped(query: Query, table: str, bucket: str | None) -> str:
    """The rows of `query` from `table`: r0/d0 for its dimension if any, m<i> its metrics."""
    metrics = METRICS | TABLE_METRICS.get(table, {})
    select = [f"{metrics[m]} AS m{i}" for i, m in enumerate(query.metrics)]
    group, where = "", _WHERE
    if query.dimensions:
        dimension = query.dimensions[0]
        if dimension in TIME_DIMENSIONS:
            raw, labelled = BUCKETS[bucket or "day"], time_label(bucket or "day", "r0")
        elif dimension in VISIT_VALUES:
            stored, raw = VISIT_VALUES[dimension]
            labelled = label(dimension, "r0")
            where = f"{_SITE} AND dimension = '{stored}' AND {_DAYS}"
        else:
            raw, labelled = EVENT_DIMENSIONS[dimension], label(dimension, "r0")
        select[:0] = [f"{raw} AS r0", f"{labelled} AS d0"]
        group = "\nGROUP BY r0"
    return f"SELECT {', '.join(select)}\nFROM {table}\n{where}{group}"

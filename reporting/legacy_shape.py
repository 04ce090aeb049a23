"""v2 answers (reporting/answer.py) reshaped as Plausible's Stats API v1 answers them:
aggregate `{"results": {metric: {"value"}}}` (with `comparison_value` and `change`),
timeseries rows for every bucket, breakdown rows keyed by the property's last name part.

Shapes, rounding and empty buckets follow Plausible (`plausible/analytics`
lib/plausible/stats/legacy/{aggregate,timeseries,breakdown}.ex, stats/compare.ex,
stats/metrics.ex `default_value`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from schemas.query import CONVERSION_METRICS

# Whole numbers in every v1 answer, as Plausible rounds them (v2 gives the bounce rate
# to 2 decimals); v1 clients declare them integers (Airbyte's Plausible source).
ROUNDED = frozenset({"bounce_rate", "visit_duration"})
# What an empty time bucket holds besides zero counts (Plausible's default values,
# stats/metrics.ex): no visit has a duration (null); the rates are zero.
EMPTY_BUCKET: dict[str, Any] = {
    "visit_duration": None, "bounce_rate": 0, "views_per_visit": 0.0, "conversion_rate": 0.0,
}  # fmt: skip
# Metrics of whole visits (the others are counted from events).
VISIT_METRICS = frozenset({"visits", "bounce_rate", "visit_duration", "views_per_visit"})
# Breakdowns whose rows also name the parent property (a version names its browser).
PARENT = {"visit:browser_version": "visit:browser", "visit:os_version": "visit:os"}


def half_up(value: float) -> int:
    """Round half away from zero (Elixir's round/1), not to even."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def rounded(metrics: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """A v2 row's metrics as {metric: value}, rounded as v1 rounds them."""
    return {m: half_up(v) if m in ROUNDED else v for m, v in zip(metrics, row, strict=True)}


def totals(answer: dict[str, Any], metrics: Sequence[str]) -> dict[str, Any]:
    """The one row of an aggregate's v2 answer as {metric: value}."""
    row = answer["results"][0]["metrics"] if answer["results"] else [0] * len(metrics)
    return rounded(metrics, row)


def aggregate(now: dict[str, Any], before: dict[str, Any] | None = None) -> dict[str, Any]:
    """`{"results": {metric: {"value", ["comparison_value", "change"]}}}`."""
    results: dict[str, Any] = {}
    for metric, value in now.items():
        results[metric] = {"value": value}
        if before is not None:
            earlier = before[metric]
            results[metric] |= {
                "comparison_value": earlier,
                "change": change(metric, value, earlier),
            }
    return {"results": results}


def change(metric: str, now: float | None, before: float | None) -> float | int | None:
    """Plausible's `change`: points for the bounce rate (null from zero) and for the
    conversion rates (to one decimal), else a whole percent (100 from zero)."""
    if now is None or before is None:
        return None
    if metric in CONVERSION_METRICS:
        return round(now - before, 1)
    if metric == "bounce_rate":
        return now - before if before > 0 else None
    if before == 0:
        return 100 if now > 0 else 0
    return half_up((now - before) / before * 100)


def timeseries(
    parts: Sequence[tuple[dict[str, Any], Sequence[str]]],
    metrics: Sequence[str],
    labels: Sequence[str],
) -> dict[str, Any]:
    """Every bucket of the range in order, `date` labelled, from the v2 answers of
    `parts` (each with its metrics). A bucket no part has is empty: zero counts, a null
    visit duration and zero rates; a bucket one part lacks has that part's metrics as v2
    gives them over no rows (zeros)."""
    found: dict[str, dict[str, Any]] = {}
    for answer, part_metrics in parts:
        for row in answer["results"]:
            found.setdefault(row["dimensions"][0], {}).update(
                zip(part_metrics, row["metrics"], strict=True)
            )
    rows = []
    for label in labels:
        values = found.get(label)
        if values is None:
            rows.append({"date": label, **{m: EMPTY_BUCKET.get(m, 0) for m in metrics}})
        else:
            absent = [values.get(m, 0.0 if m in CONVERSION_METRICS else 0) for m in metrics]
            rows.append({"date": label, **rounded(metrics, absent)})
    return {"results": rows}


def split(metrics: Sequence[str]) -> list[list[str]]:
    """A time series' metrics as separate v2 queries: those counted from events, and
    those of whole visits. Each metric is computed alike either way (reporting/metrics.py
    filters its rows by kind), and apart each part can be answered from the tables that
    outlive raw retention: the daily aggregates and the visits."""
    visit = [m for m in metrics if m in VISIT_METRICS]
    event = [m for m in metrics if m not in VISIT_METRICS]
    return [part for part in (event, visit) if part]


def breakdown(
    answer: dict[str, Any], dimensions: Sequence[str], metrics: Sequence[str]
) -> dict[str, Any]:
    """Each row keyed by its properties' last name parts (`event:props:plan` -> `plan`)."""
    keys = [row_key(d) for d in dimensions]
    return {
        "results": [
            {
                **dict(zip(keys, row["dimensions"], strict=True)),
                **rounded(metrics, row["metrics"]),
            }
            for row in answer["results"]
        ]
    }


def dimensions_of(prop: str) -> list[str]:
    """The v2 dimensions of a breakdown property (a version goes with its parent)."""
    return [PARENT[prop], prop] if prop in PARENT else [prop]


def row_key(prop: str) -> str:
    """A property's key in a breakdown row: the last part of its name."""
    return prop.rsplit(":", 1)[-1]

"""The parameters of Plausible's Stats API v1 (`GET /api/v1/stats/*`) checked in
Plausible's order and refused with its messages: the period and date as a range of
days, the timeseries interval, the breakdown property, metrics, limit and page.

Behaviour and messages follow Plausible (`plausible/analytics`
lib/plausible_web/controllers/api/external_stats_controller.ex and
lib/plausible/stats/legacy/legacy_query_builder.ex; `plausible/docs` stats-api-v1.md);
the code is hitstream's own. Errors are APIError 400s whose `error` is Plausible's text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from foundation.http import APIError
from schemas.query import GOAL_DIMENSION, PROPS_PREFIX, UNAVAILABLE_DIMENSIONS, VISIT_DIMENSIONS

DOCS = "https://plausible.io/docs/stats-api"
PERIODS = ("day", "7d", "28d", "30d", "90d", "month", "6mo", "12mo", "custom")
DEFAULT_PERIOD = "30d"
# Plausible's `Nd` periods are N whole days ending the day before `date` (since its
# PR #5240, 2025: before, `7d` ended on `date` itself); `28d` and `90d` came with it.
_DAYS = {"7d": 7, "28d": 28, "30d": 30, "90d": 90}
_MONTHS = {"month": 1, "6mo": 6, "12mo": 12}
# The days a range may reach (the v2 query's own bounds: reporting/parse.py).
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 2), dt.date(2099, 12, 31)
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Metrics of the v1 API that hitstream answers (its v2 names are the same, but for
# conversion_rate: see v2_metrics). Plausible's `time_on_page` is a v1 metric hitstream
# does not have: it gets the "not recognized" answer, as any other name does.
METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate",
           "visit_duration", "events", "conversion_rate")  # fmt: skip
SESSION_METRICS = ("visits", "bounce_rate", "visit_duration", "views_per_visit")
# Properties whose breakdown or filter refuses session metrics (Plausible's rule).
_EVENT_ONLY = ("event:name", "event:goal")
# Breakdown properties: hitstream's dimensions (event:hostname is refused as Plausible does).
EVENT_PROPERTIES = ("event:page", "event:name", GOAL_DIMENSION)
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
INTERVALS = ("day", "month")


def bad(message: str, field: str) -> APIError:
    """A v1 refusal: Plausible's message, and the parameter at fault as a detail."""
    return APIError(400, message, [{"field": field, "message": "see error"}])


def period_of(params: Mapping[str, str]) -> str:
    period = params.get("period") or DEFAULT_PERIOD
    if period not in PERIODS:
        raise bad(
            f"Error parsing `period` parameter: invalid period `{period[:50]}`. Please find "
            f"accepted values in our docs: {DOCS}#time-periods",
            "period",
        )
    return period


def days_of(period: str, params: Mapping[str, str], today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day (both included) of a v1 period; `today` is the site's."""
    date = params.get("date")
    try:
        if period == "custom":
            first, last = _custom(date)
        else:
            day = today if date in (None, "", "today") else _single(date)
            first, last = _period_days(period, day)
    except (OverflowError, ValueError):  # a period reaching past year 1 or 9999
        first, last = dt.date.max, dt.date.min
    if not FIRST_DAY <= first <= last <= LAST_DAY:
        raise bad(
            "Error parsing `date` parameter: invalid_date. Please specify a valid date in "
            f"ISO-8601 format (the range must be in order, within {FIRST_DAY}..{LAST_DAY}).",
            "date",
        )
    return first, last


def _period_days(period: str, day: dt.date) -> tuple[dt.date, dt.date]:
    if period == "day":
        return day, day
    if period in _DAYS:
        last = day - dt.timedelta(days=1)
        return last - dt.timedelta(days=_DAYS[period] - 1), last
    # month, 6mo, 12mo: whole months up to the end of `day`'s month (the current one
    # included, unlike v2's 6mo/12mo).
    first = month_start(day, _MONTHS[period] - 1)
    return first, month_start(day, -1) - dt.timedelta(days=1)


def month_start(day: dt.date, back: int = 0) -> dt.date:
    """The first day of the month `back` months before `day`'s (negative: after)."""
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def _single(text: str) -> dt.date:
    reason = "invalid_format"
    if _ISO_DAY.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            reason = "invalid_date"
    raise bad(
        f"Error parsing `date` parameter: {reason}. Please specify a valid date in ISO-8601 "
        "format.",
        "date",
    )


def _custom(date: str | None) -> tuple[dt.date, dt.date]:
    if not date:
        raise bad(
            f"The `date` parameter is required when using a custom period. See {DOCS}#time-periods",
            "date",
        )
    parts = [part.strip() for part in date.split(",")]
    try:
        if len(parts) != 2 or not all(_ISO_DAY.match(part) for part in parts):
            raise ValueError
        return dt.date.fromisoformat(parts[0]), dt.date.fromisoformat(parts[1])
    except ValueError:
        raise bad(
            "Invalid format for `date` parameter. When using a custom period, please include "
            f"two ISO-8601 formatted dates joined by a comma. See {DOCS}#time-periods",
            "date",
        ) from None


def interval_of(params: Mapping[str, str], period: str) -> str:
    """The time bucket of a timeseries: `interval` (`date` is `day`), else Plausible's
    default for the period (hours for a day, months for 6mo and 12mo, else days)."""
    interval = params.get("interval")
    if interval is None:
        return "hour" if period == "day" else "month" if period in ("6mo", "12mo") else "day"
    interval = "day" if interval == "date" else interval
    if interval not in INTERVALS:
        raise bad(
            f"Error parsing `interval` parameter: invalid interval `{interval[:50]}`. Valid "
            "intervals are `day`, `month`",
            "interval",
        )
    return interval


def property_of(params: Mapping[str, str]) -> str:
    """The breakdown's property, one hitstream can break down by."""
    prop = params.get("property")
    if not prop:
        raise bad(
            "The `property` parameter is required. Please provide at least one property to "
            "show a breakdown by.",
            "property",
        )
    if prop == "event:hostname":
        raise bad(
            "Property 'event:hostname' is currently not supported for breakdowns.  Please "
            f"provide a valid property for the breakdown endpoint: {DOCS}#properties",
            "property",
        )
    if prop in UNAVAILABLE_DIMENSIONS:
        raise bad(UNAVAILABLE_DIMENSIONS[prop], "property")
    if not known_property(prop):
        raise bad(
            f"Invalid property '{prop[:100]}'. Please provide a valid property for the "
            f"breakdown endpoint: {DOCS}#properties",
            "property",
        )
    return prop


def known_property(name: str) -> bool:
    """A property hitstream has (not visit:city: UNAVAILABLE_DIMENSIONS)."""
    return (
        name in EVENT_PROPERTIES
        or name in VISIT_DIMENSIONS
        or (name.startswith(PROPS_PREFIX) and len(name) > len(PROPS_PREFIX))
    )


def event_only(name: str) -> bool:
    """A property of events that visits cannot be broken down or filtered by in v1."""
    return name in _EVENT_ONLY or name.startswith(PROPS_PREFIX)


def metrics_of(
    params: Mapping[str, str], filtered: list[str], breakdown: str | None = None
) -> list[str]:
    """`metrics` (default visitors), checked against the filtered properties and the
    breakdown property, in Plausible's order of checks."""
    metrics = [m.strip() for m in (params.get("metrics") or "visitors").split(",")]
    if len(set(metrics)) != len(metrics):
        raise bad("Metrics cannot be queried multiple times.", "metrics")
    for metric in metrics:
        if metric not in METRICS:
            raise bad(
                f"The metric `{metric[:100]}` is not recognized. Find valid metrics from the "
                f"documentation: {DOCS}#metrics",
                "metrics",
            )
    for metric in metrics:
        _check_metric(metric, filtered, breakdown)
    return metrics


def _check_metric(metric: str, filtered: list[str], breakdown: str | None) -> None:
    """One metric against the filtered properties and the breakdown property (Plausible
    checks metric by metric, in the order given)."""
    if metric == "conversion_rate" and GOAL_DIMENSION not in (breakdown, *filtered):
        raise bad(
            "Metric `conversion_rate` can only be queried in a goal breakdown or with a goal "
            "filter",
            "metrics",
        )
    if metric == "views_per_visit":
        if "event:page" in filtered:
            raise bad(
                "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
                "metrics",
            )
        if breakdown is not None:
            raise bad("Metric `views_per_visit` is not supported in breakdown queries.", "metrics")
    if metric not in SESSION_METRICS:
        return
    if breakdown is not None and event_only(breakdown):
        raise bad(
            f"Session metric `{metric}` cannot be queried for breakdown by `{breakdown}`.",
            "metrics",
        )
    # hitstream breaks visits down by their entry page, not by every page: a visit
    # metric broken down by event:page is refused, in Plausible's words.
    if breakdown == "event:page" and metric != "visits":
        raise bad(
            f"Session metric `{metric}` cannot be queried for breakdown by `{breakdown}`.",
            "metrics",
        )
    prop = next((p for p in filtered if event_only(p)), None)
    if prop is not None:
        raise bad(
            f"Session metric `{metric}` cannot be queried when using a filter on `{prop}`.",
            "metrics",
        )


def v2_metrics(metrics: list[str], per_group: bool) -> list[str]:
    """The v2 names of v1 metrics: Plausible answers v1's `conversion_rate` per group
    (v2's group_conversion_rate) in a time series and in a breakdown by a property other
    than event:goal and event:props:* (`per_group`), else over the whole query."""
    group = "group_conversion_rate" if per_group else "conversion_rate"
    return [group if m == "conversion_rate" else m for m in metrics]


def per_group(breakdown: str) -> bool:
    """Whether v1's conversion_rate is per group in a breakdown by `breakdown`."""
    return breakdown != GOAL_DIMENSION and not breakdown.startswith(PROPS_PREFIX)


def limit_of(params: Mapping[str, str]) -> int:
    limit = _integer(params.get("limit"), DEFAULT_LIMIT)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise bad("Please provide limit as a number between 1 and 1000.", "limit")
    return limit


def page_of(params: Mapping[str, str]) -> int:
    page = _integer(params.get("page"), 1)
    if page is None or page < 1:
        raise bad("Please provide page as a positive number.", "page")
    return page


def _integer(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d{1,12}", text) else None

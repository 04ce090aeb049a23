"""A query's date range in the site's time zone: its bounds as UTC instants, its time
buckets and their labels, and the period it is compared with.

Days, weeks and months are the site's local ones (zoneinfo: daylight-saving changes and
half-hour offsets included); the engine gets the bounds as UTC instants and the zone
name, and labels its buckets with the same formats as `labels` (FORMATS).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from reporting.model import DateRange, QueryError

REALTIME = dt.timedelta(minutes=30)
# Most buckets a time dimension may make (time:minute over a month would be 43,200).
MAX_BUCKETS = 10_000
# The labels of each bucket, as the engine formats them (reporting/expressions.py).
FORMATS = {
    "minute": "%Y-%m-%d %H:%M:00",
    "hour": "%Y-%m-%d %H:00:00",
    "day": "%Y-%m-%d",
    "week": "%Y-%m-%d",
    "month": "%Y-%m-01",
}
# `Nd`: N whole days ending yesterday, N up to Plausible's 5,000.
MAX_DAYS = 5_000
_N_DAYS = re.compile(r"^([1-9][0-9]{0,3})d$")
_STEP = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1)}
_MONTHS = {"month": 1, "6mo": 6, "12mo": 12}


@dataclass(frozen=True)
class Period:
    """[start, end) as aware UTC instants, in the zone `tz`."""

    start: dt.datetime
    end: dt.datetime
    tz: ZoneInfo
    keyword: str | None = None

    @property
    def days(self) -> float:
        return (self.end - self.start) / dt.timedelta(days=1)

    def shown(self) -> list[str]:
        """The range as the answer states it: first and last second, in the site's zone."""
        last = max(self.start, self.end - dt.timedelta(seconds=1))
        return [
            self.start.astimezone(self.tz).isoformat(timespec="seconds"),
            last.astimezone(self.tz).isoformat(timespec="seconds"),
        ]


def midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant of a local day, in UTC (a day that starts in a DST gap starts
    at the first local time that exists)."""
    local = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    return local.astimezone(dt.UTC)


def _days(first: dt.date, last: dt.date, tz: ZoneInfo, keyword: str | None = None) -> Period:
    return Period(midnight(first, tz), midnight(last + dt.timedelta(days=1), tz), tz, keyword)


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def resolve(
    date_range: DateRange, tz: ZoneInfo, now: dt.datetime, first_day: dt.date | None = None
) -> Period:
    """The bounds of a range keyword or explicit range; `first_day` is the site's first
    UTC day with data (for "all")."""
    keyword = date_range.keyword
    today = now.astimezone(tz).date()
    if keyword is None:
        first, last = date_range.first, date_range.last
        if isinstance(first, dt.datetime) and isinstance(last, dt.datetime):
            return Period(first.astimezone(dt.UTC), last.astimezone(dt.UTC) + _EPSILON, tz)
        assert isinstance(first, dt.date) and isinstance(last, dt.date)
        return _days(first, last, tz)
    if keyword == "realtime":
        return Period(now - REALTIME, now + _EPSILON, tz, keyword)
    if keyword == "24h":
        return Period(now - dt.timedelta(hours=24), now + _EPSILON, tz, keyword)
    if keyword == "day":
        return _days(today, today, tz, keyword)
    n = days_of(keyword)
    if n:
        # Plausible's `Nd` (filters/query_parser.ex): the N whole days before today.
        return _days(today - dt.timedelta(days=n), today - dt.timedelta(days=1), tz, keyword)
    if keyword in _MONTHS:
        first = _month_start(today, _MONTHS[keyword] - 1)
        return _days(first, _month_start(today, -1) - dt.timedelta(days=1), tz, keyword)
    if keyword == "year":
        return _days(dt.date(today.year, 1, 1), dt.date(today.year, 12, 31), tz, keyword)
    assert keyword == "all"
    if first_day is None:
        return _days(today, today, tz, keyword)
    # The local day that holds the first UTC day's first instant.
    first = dt.datetime.combine(first_day, dt.time(0), tzinfo=dt.UTC).astimezone(tz).date()
    return _days(min(first, today), today, tz, keyword)


def days_of(keyword: str) -> int:
    """N for a range keyword `Nd` (1 to MAX_DAYS), else 0."""
    match = _N_DAYS.match(keyword)
    n = int(match.group(1)) if match else 0
    return n if n <= MAX_DAYS else 0


# Explicit end instants are included: the range is closed at its last millisecond.
_EPSILON = dt.timedelta(milliseconds=1)


def auto_bucket(period: Period) -> str:
    """The bucket `time` means for this range: minutes for realtime, hours for up to a
    day (25 hours: a DST day), days up to 3 months, months beyond."""
    if period.keyword == "realtime":
        return "minute"
    if period.end - period.start <= dt.timedelta(hours=25):
        return "hour"
    return "day" if period.days <= 92 else "month"


def labels(period: Period, bucket: str) -> list[str]:
    """Every bucket of the range, in order, as the engine labels them (at most one past
    MAX_BUCKETS)."""
    if bucket in _STEP:
        return _clock_labels(period, bucket)
    return _calendar_labels(period, bucket)


def _clock_labels(period: Period, bucket: str) -> list[str]:
    """Minutes or hours: stepped in UTC and labelled locally (a repeated DST hour once)."""
    fmt, tz = FORMATS[bucket], period.tz
    floor = period.start.astimezone(tz).replace(second=0, microsecond=0)
    if bucket == "hour":
        floor = floor.replace(minute=0)
    moment = floor.astimezone(dt.UTC)
    out: list[str] = []
    while moment < period.end and len(out) <= MAX_BUCKETS:
        label = moment.astimezone(tz).strftime(fmt)
        if not out or out[-1] != label:
            out.append(label)
        moment += _STEP[bucket]
    return out


def _calendar_labels(period: Period, bucket: str) -> list[str]:
    """Local days, weeks (from Monday) or months."""
    first = period.start.astimezone(period.tz).date()
    last = (period.end - _EPSILON).astimezone(period.tz).date()
    if bucket == "week":
        first -= dt.timedelta(days=first.weekday())
    elif bucket == "month":
        first = first.replace(day=1)
    out: list[str] = []
    day = first
    while day <= last and len(out) <= MAX_BUCKETS:
        out.append(day.strftime(FORMATS[bucket]))
        if bucket == "month":
            day = _month_start(day, -1)
        else:
            day += dt.timedelta(days=7 if bucket == "week" else 1)
    return out


def checked_labels(period: Period, bucket: str, where: str) -> list[str]:
    """Every bucket's label; a time dimension that would make more than MAX_BUCKETS
    buckets is refused."""
    out = labels(period, bucket)
    if len(out) > MAX_BUCKETS:
        raise QueryError(
            where,
            f"time:{bucket} over this range makes more than {MAX_BUCKETS} buckets: "
            "choose a coarser time dimension or a shorter range",
        )
    return out


def previous(period: Period, how: str) -> Period:
    """The period a comparison is made with: a year earlier, or just before it: the same
    number of calendar months for whole months, else the same length."""
    if how == "year_over_year":
        start, end = (_year_back(moment, period.tz) for moment in (period.start, period.end))
        return Period(start, end, period.tz)
    first, after = (m.astimezone(period.tz) for m in (period.start, period.end))
    if _is_midnight(first) and _is_midnight(after) and first.day == 1 and after.day == 1:
        # Whole calendar months: the same number of months before.
        months = (after.year - first.year) * 12 + after.month - first.month
        earlier = _month_start(first.date(), months)
        return Period(midnight(earlier, period.tz), midnight(first.date(), period.tz), period.tz)
    length = period.end - period.start
    # The keyword goes along: the previous half hour of realtime has minute buckets too.
    return Period(period.start - length, period.start, period.tz, period.keyword)


def same_weekday(earlier: Period, period: Period) -> Period:
    """`earlier` moved to start on the day of the week `period` starts on, as Plausible's
    `match_day_of_week` moves it: to the next such day, or the one before when the next
    is `period`'s own first day. Only whole days move."""
    tz = period.tz
    first, after = (m.astimezone(tz) for m in (earlier.start, earlier.end))
    if not (_is_midnight(first) and _is_midnight(after)):
        return earlier
    target = period.start.astimezone(tz).date().weekday()
    ahead = (target - first.weekday()) % 7
    if ahead == 0:
        return earlier
    if first.date() + dt.timedelta(days=ahead) == period.start.astimezone(tz).date():
        ahead -= 7
    shift = dt.timedelta(days=ahead)
    return _days(first.date() + shift, after.date() - dt.timedelta(days=1) + shift, tz)


def _is_midnight(local: dt.datetime) -> bool:
    return local.time() == dt.time(0)


def _year_back(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    local = moment.astimezone(tz).replace(tzinfo=None)
    try:
        earlier = local.replace(year=local.year - 1)
    except ValueError:  # 29 February
        earlier = local.replace(year=local.year - 1, day=28)
    return earlier.replace(tzinfo=tz).astimezone(dt.UTC)

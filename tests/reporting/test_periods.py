"""Range keywords, local days and time buckets (pure: no engine)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from reporting import periods
from reporting.model import DateRange

UTC = ZoneInfo("UTC")
NOW = dt.datetime(2024, 5, 15, 13, 7, 42, tzinfo=dt.UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("keyword", "first", "last"),
    [
        ("day", "2024-05-15T00:00:00+00:00", "2024-05-15T23:59:59+00:00"),
        # Nd: the N whole days before today (Plausible's current rule, spec S2)
        ("1d", "2024-05-14T00:00:00+00:00", "2024-05-14T23:59:59+00:00"),
        ("7d", "2024-05-08T00:00:00+00:00", "2024-05-14T23:59:59+00:00"),
        ("28d", "2024-04-17T00:00:00+00:00", "2024-05-14T23:59:59+00:00"),
        ("30d", "2024-04-15T00:00:00+00:00", "2024-05-14T23:59:59+00:00"),
        ("90d", "2024-02-15T00:00:00+00:00", "2024-05-14T23:59:59+00:00"),
        ("91d", "2024-02-14T00:00:00+00:00", "2024-05-14T23:59:59+00:00"),
        ("month", "2024-05-01T00:00:00+00:00", "2024-05-31T23:59:59+00:00"),
        ("6mo", "2023-12-01T00:00:00+00:00", "2024-05-31T23:59:59+00:00"),
        ("12mo", "2023-06-01T00:00:00+00:00", "2024-05-31T23:59:59+00:00"),
        ("year", "2024-01-01T00:00:00+00:00", "2024-12-31T23:59:59+00:00"),
        ("24h", "2024-05-14T13:07:42+00:00", "2024-05-15T13:07:41+00:00"),
        ("realtime", "2024-05-15T12:37:42+00:00", "2024-05-15T13:07:41+00:00"),
    ],
)
def test_range_keywords(keyword: str, first: str, last: str) -> None:
    period = periods.resolve(DateRange(keyword=keyword), UTC, NOW)
    assert period.shown() == [first, last]


def test_all_starts_on_the_local_day_of_the_first_data() -> None:
    west = periods.resolve(DateRange(keyword="all"), ZoneInfo("America/New_York"), NOW,
                           first_day=dt.date(2024, 1, 10))  # fmt: skip
    assert west.shown()[0] == "2024-01-09T00:00:00-05:00"
    east = periods.resolve(DateRange(keyword="all"), ZoneInfo("Asia/Tokyo"), NOW,
                           first_day=dt.date(2024, 1, 10))  # fmt: skip
    assert east.shown()[0] == "2024-01-10T00:00:00+09:00"
    empty = periods.resolve(DateRange(keyword="all"), UTC, NOW)
    assert empty.shown()[0] == "2024-05-15T00:00:00+00:00"


def test_explicit_date_times_include_their_last_instant() -> None:
    first = dt.datetime.fromisoformat("2024-01-01T12:00:00+02:00")
    last = dt.datetime.fromisoformat("2024-01-01T15:59:59+02:00")
    period = periods.resolve(DateRange(first=first, last=last), UTC, NOW)
    assert period.start == dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    assert period.end == dt.datetime(2024, 1, 1, 13, 59, 59, 1000, tzinfo=dt.UTC)


def test_hour_labels_on_dst_days() -> None:
    spring = periods.resolve(
        DateRange(first=dt.date(2024, 3, 31), last=dt.date(2024, 3, 31)),
        ZoneInfo("Europe/Berlin"),
        NOW,
    )
    labels = periods.labels(spring, "hour")
    assert len(labels) == 23 and "2024-03-31 02:00:00" not in labels
    autumn = periods.resolve(
        DateRange(first=dt.date(2024, 10, 27), last=dt.date(2024, 10, 27)),
        ZoneInfo("Europe/Berlin"),
        NOW,
    )
    # 25 hours, but 02:00 twice: one label, as the engine formats local hours.
    labels = periods.labels(autumn, "hour")
    assert len(labels) == 24 and labels.count("2024-10-27 02:00:00") == 1


def test_half_hour_zone_labels_start_at_local_midnight() -> None:
    day = periods.resolve(
        DateRange(first=dt.date(2024, 6, 2), last=dt.date(2024, 6, 2)),
        ZoneInfo("Asia/Kolkata"),
        NOW,
    )
    assert day.start == dt.datetime(2024, 6, 1, 18, 30, tzinfo=dt.UTC)
    assert periods.labels(day, "hour")[:2] == ["2024-06-02 00:00:00", "2024-06-02 01:00:00"]


def test_week_and_month_labels() -> None:
    period = periods.resolve(
        DateRange(first=dt.date(2024, 1, 31), last=dt.date(2024, 3, 5)), UTC, NOW
    )
    assert periods.labels(period, "week")[:2] == ["2024-01-29", "2024-02-05"]
    assert periods.labels(period, "month") == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert len(periods.labels(period, "day")) == 35


def test_auto_bucket() -> None:
    def bucket(keyword: str) -> str:
        return periods.auto_bucket(periods.resolve(DateRange(keyword=keyword), UTC, NOW))

    assert [bucket(k) for k in ("realtime", "day", "24h", "7d", "91d", "6mo", "year")] == [
        "minute", "hour", "hour", "day", "day", "month", "month",
    ]  # fmt: skip


def test_previous_periods() -> None:
    month = periods.resolve(
        DateRange(first=dt.date(2024, 3, 1), last=dt.date(2024, 3, 31)), UTC, NOW
    )
    before = periods.previous(month, "previous_period")
    assert before.shown() == ["2024-02-01T00:00:00+00:00", "2024-02-29T23:59:59+00:00"]
    week = periods.resolve(DateRange(keyword="7d"), UTC, NOW)
    assert periods.previous(week, "previous_period").shown() == [
        "2024-05-01T00:00:00+00:00", "2024-05-07T23:59:59+00:00",
    ]  # fmt: skip
    leap = periods.resolve(
        DateRange(first=dt.date(2024, 2, 29), last=dt.date(2024, 2, 29)), UTC, NOW
    )
    assert periods.previous(leap, "year_over_year").shown()[0] == "2023-02-28T00:00:00+00:00"


def test_the_period_before_realtime_has_the_same_buckets() -> None:
    now = periods.resolve(DateRange(keyword="realtime"), UTC, NOW)
    before = periods.previous(now, "previous_period")
    assert periods.auto_bucket(before) == periods.auto_bucket(now) == "minute"


@pytest.mark.parametrize(
    ("first", "last", "moved"),
    [
        # Mon-Tue: the period before starts on a Saturday; the next Monday is the range's
        # own first day, so the Monday before.
        ("2024-03-04", "2024-03-05", ("2024-02-26", "2024-02-27")),
        # 30 days from a Friday: the period before starts on Wednesday 31 January; the
        # next Friday.
        ("2024-03-01", "2024-03-30", ("2024-02-02", "2024-03-02")),
        # 7 days start on the same day of the week already.
        ("2024-03-04", "2024-03-10", ("2024-02-26", "2024-03-03")),
    ],
)
def test_match_day_of_week_as_plausible_moves_the_period(
    first: str, last: str, moved: tuple[str, str]
) -> None:
    period = periods.resolve(
        DateRange(first=dt.date.fromisoformat(first), last=dt.date.fromisoformat(last)), UTC, NOW
    )
    earlier = periods.same_weekday(periods.previous(period, "previous_period"), period)
    assert earlier.shown() == [f"{moved[0]}T00:00:00+00:00", f"{moved[1]}T23:59:59+00:00"]

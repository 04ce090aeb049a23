"""Validation of the GET /stats query parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from schemas.stats import StatsQuery


def test_date_defaults_to_today_utc() -> None:
    assert StatsQuery(site_id="s").date == datetime.now(UTC).date()


def test_valid_query() -> None:
    query = StatsQuery.model_validate({"site_id": "s", "date": "2024-02-29", "event_type": "click"})
    assert (query.date, query.event_type) == (date(2024, 2, 29), "click")


@pytest.mark.parametrize(
    "bad", ["2025-02-30", "2025-13-01", "14-11-2025", "2025-11-14T00:00:00", "", "today"]
)
def test_bad_dates_are_rejected(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        StatsQuery.model_validate({"site_id": "s", "date": bad})
    assert [err["loc"] for err in info.value.errors()] == [("date",)]


def test_site_id_is_required() -> None:
    with pytest.raises(ValidationError):
        StatsQuery.model_validate({})

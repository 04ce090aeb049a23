"""The `GET /stats` query parameters and their validation."""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class StatsQuery(BaseModel):
    """`site_id` (required), `date` (YYYY-MM-DD, default today in UTC), `event_type` filter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: str = Field(min_length=1, max_length=128)
    date: dt.date = Field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    event_type: str | None = Field(default=None, min_length=1, max_length=128)

    @field_validator("date", mode="before")
    @classmethod
    def _calendar_day(cls, value: object) -> object:
        if isinstance(value, str):
            if not _DAY.match(value):
                raise PydanticCustomError("date_format", "must be a date as YYYY-MM-DD")
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise PydanticCustomError("date_value", "is not a calendar date") from None
        return value

"""Request bodies of the site administration routes."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator
from pydantic_core import PydanticCustomError

MAX_ORIGINS = 50


def _origin(value: str) -> str:
    """`scheme://host[:port]`, nothing more: what browsers send in the Origin header."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise PydanticCustomError("origin", "must be an origin like https://example.com")
    if parts.query or parts.fragment or parts.username:
        raise PydanticCustomError("origin", "must be an origin like https://example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


class SiteCreate(BaseModel):
    """`POST /api/sites`."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1, max_length=200)
    public: StrictBool = False
    allowed_origins: list[StrictStr] = Field(default_factory=list, max_length=MAX_ORIGINS)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        return sorted({_origin(v) for v in values})


class SiteUpdate(BaseModel):
    """`PATCH /api/sites/{site_id}`: what is given changes."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    public: StrictBool | None = None
    allowed_origins: list[StrictStr] | None = Field(default=None, max_length=MAX_ORIGINS)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else sorted({_origin(v) for v in values})

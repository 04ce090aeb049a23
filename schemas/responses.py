"""Response bodies, as documented in /openapi.json (the fuzz test checks answers against them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, RootModel


class ErrorDetail(BaseModel):
    field: str
    message: str
    index: int | None = Field(default=None, description="batch item the detail is about")


class Error(BaseModel):
    """Every 4xx and 5xx answer."""

    error: str
    details: list[ErrorDetail]
    errors: dict[str, list[str]] | None = Field(
        default=None,
        description="for an event sent in Plausible's shape: the details as Plausible gives them",
    )


class Accepted(BaseModel):
    status: Literal["accepted", "dropped"] = Field(
        description="dropped: sent by a crawler or headless browser, not counted"
    )
    reason: str | None = Field(default=None, examples=["bot"])
    event_id: str | None = Field(description="null when dropped")


class BatchAccepted(BaseModel):
    status: Literal["accepted", "dropped"]
    reason: str | None = Field(default=None, examples=["bot"])
    accepted: int
    event_ids: list[str]


class TopPath(BaseModel):
    path: str
    views: int


class Stats(BaseModel):
    site_id: str
    date: str = Field(description="YYYY-MM-DD, a UTC day")
    total_views: int
    unique_users: int = Field(description="distinct user_id values (events without one excluded)")
    unique_visitors: int = Field(
        description="distinct visitors: by user_id, else a daily salted hash of IP and User-Agent"
    )
    top_paths: list[TopPath] = Field(max_length=10)


class Health(BaseModel):
    """`ok` or `unavailable` for each engine this process uses and each role it runs
    (ingest: can append to the stream; consumer: reading the stream)."""

    status: str
    engines: dict[str, str]
    roles: dict[str, str]


class ShardState(BaseModel):
    shard: str = Field(description="the shard's number, or `legacy` (a release before shards)")
    stream: str
    length: int
    consumers: int
    pending: int
    lag: int | None
    oldest_pending_age_s: float
    dead_letters: int


class QueueHealth(BaseModel):
    length: int = Field(description="entries in every shard's stream")
    group: str
    consumers: int = Field(description="the most consumers reading any shard")
    pending: int
    lag: int | None = Field(description="null when Redis cannot tell some shard's lag")
    oldest_pending_age_s: float
    dead_letters: int
    shards: list[ShardState]


class KeyInfo(BaseModel):
    key_id: str
    created_at: str
    expires_at: str | None
    revoked: bool
    active: bool
    read_only: bool = Field(description="a share token: reads stats, sends no events")


class SiteInfo(BaseModel):
    site_id: str
    name: str
    public: bool
    allowed_origins: list[str]
    domains: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    public_rate_limit_per_s: float = Field(
        default=0, description="keyless requests a second; 0: the deployment's limit"
    )
    accept_server_events: bool = Field(
        default=False, description="a public site takes keyless events sent with no Origin"
    )
    website_id: str = Field(default="", description="the UUID Umami's clients name it by")
    created_at: str
    keys: list[KeyInfo] | None = None


class SiteCreated(SiteInfo):
    api_key: str = Field(description="shown once; only its hash is stored")
    key_id: str


class SiteList(BaseModel):
    sites: list[SiteInfo]


class KeyRotated(BaseModel):
    site_id: str
    key_id: str
    api_key: str
    created_at: str
    previous_keys_expire_at: str


class ShareCreated(BaseModel):
    site_id: str
    key_id: str
    token: str = Field(description="shown once; revoke it with DELETE .../keys/{key_id}")
    path: str = Field(description="the shared link, relative to this server")
    created_at: str


class ConsumerInfo(BaseModel):
    name: str
    pending: int
    idle_s: float


class DeadLetterInfo(BaseModel):
    id: str
    shard: str = Field(description="replay it as `<shard>:<id>`")
    error: str
    deliveries: int
    failed_at_ms: int
    row: str = Field(description="the start of the entry's row")


class Rate(BaseModel):
    at: int = Field(description="epoch seconds at the end of the interval")
    inserted_per_s: float
    drained_per_s: float


class QueuePanel(QueueHealth):
    consumer_list: list[ConsumerInfo]
    dead_letter_list: list[DeadLetterInfo] = Field(description="the oldest 100")
    rates: list[Rate] = Field(description="the last 15 minutes, one per sample interval")
    sample_interval_s: int


class Replayed(BaseModel):
    replayed: int
    dead_letters: int = Field(description="dead letters left")


class KeyRevoked(BaseModel):
    site_id: str
    key_id: str
    revoked: bool


class QueryRow(BaseModel):
    """One row: the dimensions' values and the metrics, in the query's order."""

    dimensions: list[str]
    metrics: list[float]
    comparison: dict[str, list[float | str | None]] | None = Field(
        default=None,
        description="with include.compare or include.comparisons: the row of the earlier period",
    )


class QueryAnswer(BaseModel):
    """`POST /api/v2/query` (Plausible's Stats API v2 shape)."""

    results: list[QueryRow]
    meta: dict[str, object] = Field(description="total_rows, time_labels when included")
    query: dict[str, object] = Field(description="the query as understood: dates, time zone")


class V1Visitors(RootModel[int]):
    """`GET /api/v1/stats/realtime/visitors`: a bare number."""


class V1Value(BaseModel):
    value: float | None
    comparison_value: float | None = Field(default=None, description="with compare")
    change: float | None = Field(default=None, description="with compare: percent, or points")


class V1Aggregate(BaseModel):
    """`GET /api/v1/stats/aggregate` (Plausible's Stats API v1 shape)."""

    results: dict[str, V1Value]


class V1Rows(BaseModel):
    """`GET /api/v1/stats/timeseries` (`date` and the metrics) and `/breakdown` (the
    property's last name part and the metrics)."""

    results: list[dict[str, str | float | None]]


class GoalInfo(BaseModel):
    """A goal: an event goal (`event_name`) or a page goal (`page_path`, `*` any
    characters); `currency` makes an event goal a revenue goal."""

    id: int
    display_name: str
    goal_type: str = Field(description="event or page")
    event_name: str | None
    page_path: str | None
    currency: str | None = None


class GoalCreated(GoalInfo):
    site_id: str


class GoalList(BaseModel):
    site_id: str
    goals: list[GoalInfo]


class GoalDeleted(BaseModel):
    site_id: str
    id: int
    deleted: bool


class V1Page(BaseModel):
    """Plausible's cursor pagination: pass `after` (or `before`) to get the next page."""

    after: str | None
    before: str | None
    limit: int


class V1Site(BaseModel):
    """A site in Plausible's Sites API v1 shape (plus hitstream's ids)."""

    domain: str
    timezone: str
    custom_properties: list[str] = Field(default_factory=list)
    site_id: str
    website_id: str
    api_key: str | None = Field(default=None, description="creation only: the site's first key")
    key_id: str | None = None


class V1SiteList(BaseModel):
    sites: list[V1Site]
    meta: V1Page


class V1Goal(GoalInfo):
    custom_props: dict[str, str] = Field(default_factory=dict)
    domain: str | None = Field(default=None, description="PUT only: the site's domain")


class V1GoalList(BaseModel):
    goals: list[V1Goal]
    meta: V1Page


class V1Deleted(BaseModel):
    deleted: bool

-- Daily totals per site and event type: view count and the unique-user state
-- (exact, anonymous events excluded). Fed by daily_totals_mv on every insert into
-- events; it has no TTL, so old days still answer after raw rows expire.
-- Rows carry whole uniqExact states (kilobytes each), and ClickHouse decodes a full
-- granule to answer one site-day: small granules keep GET /stats fast.
-- up
CREATE TABLE IF NOT EXISTS daily_totals
(
    site_id    LowCardinality(String),
    day        Date,
    event_type LowCardinality(String),
    views      SimpleAggregateFunction(sum, UInt64),
    users      AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, event_type)
SETTINGS index_granularity = 32, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_totals_mv TO daily_totals AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    count() AS views,
    uniqExactStateIf(user_id, user_id != '') AS users
FROM events
GROUP BY site_id, day, event_type
-- down
DROP VIEW IF EXISTS daily_totals_mv;
DROP TABLE IF EXISTS daily_totals

-- Daily view counts per site, event type and path, for the top-paths list.
-- Fed by daily_paths_mv; summed on merge; no TTL. A site-day is ~1,000 rows: small
-- granules keep the top-paths read to about that.
-- up
CREATE TABLE IF NOT EXISTS daily_paths
(
    site_id    LowCardinality(String),
    day        Date,
    event_type LowCardinality(String),
    path       String,
    views      UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, event_type, path)
SETTINGS index_granularity = 1024, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_paths_mv TO daily_paths AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    path,
    count() AS views
FROM events
GROUP BY site_id, day, event_type, path
-- down
DROP VIEW IF EXISTS daily_paths_mv;
DROP TABLE IF EXISTS daily_paths

-- Daily pages: per site, day, event type and path, the view count and the exact state of
-- its unique visitors, so that page breakdowns (top pages with visitors and page views)
-- answer from a few rows per day and for days whose raw events expired. It replaces
-- daily_paths (views only, a SummingMergeTree, which cannot merge a uniqExact state).
-- Rows carry whole uniqExact states (up to a site-day's visitors of that page each).
--
-- Every step can run again after a crash without counting twice: the copy of
-- daily_paths' views carries a deduplication token (a repeated insert is skipped), and
-- the visitors of the raw events still held are added as states with 0 views (a set
-- united with itself is unchanged). Days whose raw events already expired keep their
-- views and report 0 visitors per page. Stop consumers while migrating: events inserted
-- between dropping daily_paths_mv and creating daily_pages_mv would miss both.
-- up
CREATE TABLE IF NOT EXISTS daily_pages
(
    site_id    LowCardinality(String),
    day        Date,
    event_type LowCardinality(String),
    path       String,
    views      SimpleAggregateFunction(sum, UInt64),
    visitors   AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, event_type, path)
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 10000;

DROP VIEW IF EXISTS daily_paths_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_pages_mv TO daily_pages AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    path,
    count() AS views,
    uniqExactStateIf(visitor_id, visitor_id != 0) AS visitors
FROM events
GROUP BY site_id, day, event_type, path;

-- daily_paths exists unless a crash came after the DROP at the end: run again, the copy
-- then reads an empty one.
CREATE TABLE IF NOT EXISTS daily_paths
(
    site_id    LowCardinality(String),
    day        Date,
    event_type LowCardinality(String),
    path       String,
    views      UInt64
)
ENGINE = SummingMergeTree(views)
ORDER BY (site_id, day, event_type, path);

INSERT INTO daily_pages
SETTINGS insert_deduplication_token = '0013_daily_pages_views', max_threads = 1
SELECT site_id, day, event_type, path, sum(views), uniqExactStateIf(toUInt64(0), 0)
FROM daily_paths
GROUP BY site_id, day, event_type, path
ORDER BY site_id, day, event_type, path;

INSERT INTO daily_pages
SELECT site_id, toDate(ts) AS day, event_type, path, toUInt64(0),
    uniqExactStateIf(visitor_id, visitor_id != 0)
FROM events
GROUP BY site_id, day, event_type, path;

DROP TABLE IF EXISTS daily_paths
-- down
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
DROP VIEW IF EXISTS daily_pages_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS daily_paths_mv TO daily_paths AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    path,
    count() AS views
FROM events
GROUP BY site_id, day, event_type, path;
INSERT INTO daily_paths
SETTINGS insert_deduplication_token = '0013_daily_paths_views', max_threads = 1
SELECT site_id, day, event_type, path, sum(views)
FROM daily_pages
GROUP BY site_id, day, event_type, path
ORDER BY site_id, day, event_type, path;
DROP TABLE IF EXISTS daily_pages

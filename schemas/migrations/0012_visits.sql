-- Visits (sessions): each event's visit id, told at ingest (the time in milliseconds of
-- the visit's first event, by the rule schemas/entry.py states above VISIT_OPENED; 0 for
-- events without a visitor, engagement events, and rows stored before this migration),
-- and one row per visit in `sessions`,
-- kept by sessions_mv: its bounds, page views, events, entry and exit page and the
-- dimensions of its first event. Stats queries read visits from here instead of
-- computing them from raw events (reporting/compiler.py). Rows merge per visit; a query
-- reads them with FINAL. No TTL: visits outlive raw events, like the daily aggregates.
-- up
ALTER TABLE events ADD COLUMN IF NOT EXISTS session_id UInt64;
CREATE TABLE IF NOT EXISTS sessions
(
    site_id         LowCardinality(String),
    visitor_id      UInt64,
    session_id      UInt64,
    start           SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    end             SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    pageviews       SimpleAggregateFunction(sum, UInt64),
    events          SimpleAggregateFunction(sum, UInt64),
    user_id         SimpleAggregateFunction(max, String),
    entry_page      SimpleAggregateFunction(max, String),
    exit_page       AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    hostname        SimpleAggregateFunction(max, LowCardinality(String)),
    referrer        SimpleAggregateFunction(max, String),
    source          SimpleAggregateFunction(max, LowCardinality(String)),
    utm_source      SimpleAggregateFunction(max, LowCardinality(String)),
    utm_medium      SimpleAggregateFunction(max, LowCardinality(String)),
    utm_campaign    SimpleAggregateFunction(max, LowCardinality(String)),
    utm_term        SimpleAggregateFunction(max, String),
    utm_content     SimpleAggregateFunction(max, String),
    device          SimpleAggregateFunction(max, LowCardinality(String)),
    browser         SimpleAggregateFunction(max, LowCardinality(String)),
    browser_version SimpleAggregateFunction(max, LowCardinality(String)),
    os              SimpleAggregateFunction(max, LowCardinality(String)),
    os_version      SimpleAggregateFunction(max, LowCardinality(String)),
    country         SimpleAggregateFunction(max, LowCardinality(String))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM({visit_opened})
ORDER BY (site_id, toDate({visit_opened}), visitor_id, session_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- A visit's dimensions are those of the event that opened it (its id is that event's
-- time): the others give '' and `max` keeps the opener's.
CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_mv TO sessions AS
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    countIf(event_type IN ({pageview_names})) AS pageviews,
    count() AS events,
    max(user_id) AS user_id,
    maxIf(path, opener) AS entry_page,
    argMaxState(path, ts) AS exit_page,
    maxIf(hostname, opener) AS hostname,
    maxIf(referrer, opener) AS referrer,
    maxIf(source, opener) AS source,
    maxIf(utm_source, opener) AS utm_source,
    maxIf(utm_medium, opener) AS utm_medium,
    maxIf(utm_campaign, opener) AS utm_campaign,
    maxIf(utm_term, opener) AS utm_term,
    maxIf(utm_content, opener) AS utm_content,
    maxIf(device, opener) AS device,
    maxIf(browser, opener) AS browser,
    maxIf(browser_version, opener) AS browser_version,
    maxIf(os, opener) AS os,
    maxIf(os_version, opener) AS os_version,
    maxIf(country, opener) AS country
FROM (
    SELECT *, toUnixTimestamp64Milli(ts) = toInt64(session_id) AS opener
    FROM events
    WHERE session_id != 0 AND event_type != {engagement_name}
)
GROUP BY site_id, visitor_id, session_id
-- down
DROP VIEW IF EXISTS sessions_mv;
DROP TABLE IF EXISTS sessions;
ALTER TABLE events DROP COLUMN IF EXISTS session_id

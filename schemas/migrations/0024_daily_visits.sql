-- Daily visits: per site, visit dimension, day and value, the visitors whose visits
-- opened that day with that value, so that a breakdown of visitors by a visit's entry
-- page, source, channel, UTM tag, country, browser or OS answers from a few rows per
-- day instead of every visit of the range in `sessions` (the dashboard's panels). Kept,
-- like daily_pages (migration 0023), as the bitmap of numbered visitors beside the exact
-- state of the others, which never share a visitor.
--
-- A visit's dimensions are its opener's (the event whose time is the visit's id, as
-- sessions_mv reads them), so the view counts each visit once, from the insert holding
-- its first event, under one row per dimension. `channel` holds the inputs of the channel rules (source,
-- utm_medium, utm_source, utm_campaign, click-id parameter) as a JSON array: the rules
-- stay in code (schemas/channels.py) and run over a few rows at query time. The exit
-- page and its hostname are the last event's, which no single insert knows: they stay
-- in `sessions`, as do the dimensions a breakdown asks of a visit more rarely (versions,
-- region and city, the entry page's hostname): each dimension held here costs every
-- insert a row per visit.
--
-- Two cases differ from `sessions` (docs/operations.md): a visit whose first event is
-- never stored (its later events give `sessions` a visit with empty dimensions; here it
-- is not counted), and a visit with two first events in the same millisecond (each
-- column's largest value in `sessions`; here counted under both values where they
-- differ).
--
-- Visits stored before: those whose first events the raw events still hold are counted
-- as the view counts (numbers included); the visits of days the raw events no longer
-- hold whole (raw retention, HITSTREAM_RAW_TTL_DAYS) come from `sessions` by visitor
-- ID. Each insert carries a deduplication token, so running the migration again after
-- a crash counts nothing twice. Stop the consumers while migrating (0013 says why).
-- up
CREATE TABLE IF NOT EXISTS daily_visits
(
    site_id   LowCardinality(String),
    dimension LowCardinality(String),
    day       Date,
    value     String,
    visitors  AggregateFunction(uniqExact, UInt64),
    numbered  AggregateFunction(groupBitmap, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, dimension, day, value)
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_visits_mv TO daily_visits AS
SELECT
    site_id,
    pair.1 AS dimension,
    toDate(ts) AS day,
    pair.2 AS value,
    uniqExactStateIf(visitor_id, visitor_no = 0) AS visitors,
    groupBitmapStateIf(visitor_no, visitor_no != 0) AS numbered
FROM (
    SELECT * FROM events
    WHERE session_id != 0 AND event_type != {engagement_name}
      AND toUnixTimestamp64Milli(ts) = toInt64(session_id)
)
ARRAY JOIN [
        ('entry_page', path),
        ('source', toString(source)),
        ('referrer', referrer),
        ('utm_source', toString(utm_source)),
        ('utm_medium', toString(utm_medium)),
        ('utm_campaign', toString(utm_campaign)),
        ('utm_term', utm_term),
        ('utm_content', utm_content),
        ('device', toString(device)),
        ('browser', toString(browser)),
        ('os', toString(os)),
        ('country', toString(country)),
        ('channel', toJSONString([toString(source), toString(utm_medium),
            toString(utm_source), toString(utm_campaign), toString(click_id_param)]))
    ] AS pair
GROUP BY site_id, dimension, day, value;

-- Visits opened before the first day the raw events hold whole, when retention has
-- dropped any: from `sessions` (whose dimensions are its opener's, the same values).
INSERT INTO daily_visits
SETTINGS insert_deduplication_token = '0024_daily_visits_sessions', max_threads = 1,
    max_bytes_before_external_group_by = 268435456
SELECT site_id, pair.1 AS dimension, toDate({visit_opened}) AS day, pair.2 AS value,
    uniqExactState(visitor_id), groupBitmapStateIf(toUInt64(0), 0)
FROM (
    SELECT * FROM sessions FINAL
    WHERE toDate({visit_opened}) < (
        SELECT if(min(ts) > (SELECT min({visit_opened}) FROM sessions),
                  toDate(min(ts)) + 1, toDate(0))
        FROM events
    )
)
ARRAY JOIN [
        ('entry_page', entry_page),
        ('source', toString(source)),
        ('referrer', referrer),
        ('utm_source', toString(utm_source)),
        ('utm_medium', toString(utm_medium)),
        ('utm_campaign', toString(utm_campaign)),
        ('utm_term', utm_term),
        ('utm_content', utm_content),
        ('device', toString(device)),
        ('browser', toString(browser)),
        ('os', toString(os)),
        ('country', toString(country)),
        ('channel', toJSONString([toString(source), toString(utm_medium),
            toString(utm_source), toString(utm_campaign), toString(click_id_param)]))
    ] AS pair
GROUP BY site_id, dimension, day, value
ORDER BY site_id, dimension, day, value;

-- The visits opened from that day on: from their first events, as the view counts them.
INSERT INTO daily_visits
SETTINGS insert_deduplication_token = '0024_daily_visits_events', max_threads = 1,
    max_bytes_before_external_group_by = 268435456
SELECT site_id, pair.1 AS dimension, toDate(ts) AS day, pair.2 AS value,
    uniqExactStateIf(visitor_id, visitor_no = 0),
    groupBitmapStateIf(visitor_no, visitor_no != 0)
FROM (
    SELECT * FROM events
    WHERE session_id != 0 AND event_type != {engagement_name}
      AND toUnixTimestamp64Milli(ts) = toInt64(session_id)
      AND toDate(ts) >= (
        SELECT if(min(ts) > (SELECT min({visit_opened}) FROM sessions),
                  toDate(min(ts)) + 1, toDate(0))
        FROM events
    )
)
ARRAY JOIN [
        ('entry_page', path),
        ('source', toString(source)),
        ('referrer', referrer),
        ('utm_source', toString(utm_source)),
        ('utm_medium', toString(utm_medium)),
        ('utm_campaign', toString(utm_campaign)),
        ('utm_term', utm_term),
        ('utm_content', utm_content),
        ('device', toString(device)),
        ('browser', toString(browser)),
        ('os', toString(os)),
        ('country', toString(country)),
        ('channel', toJSONString([toString(source), toString(utm_medium),
            toString(utm_source), toString(utm_campaign), toString(click_id_param)]))
    ] AS pair
GROUP BY site_id, dimension, day, value
ORDER BY site_id, dimension, day, value
-- down
DROP VIEW IF EXISTS daily_visits_mv;
DROP TABLE IF EXISTS daily_visits

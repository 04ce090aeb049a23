-- 0001_events up
CREATE TABLE IF NOT EXISTS events_local ON CLUSTER hitstream
(
    event_id    UUID,
    site_id     LowCardinality(String),
    event_type  LowCardinality(String),
    path        String CODEC(ZSTD(1)),
    user_id     String CODEC(ZSTD(1)),
    ts          DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    received_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/events_local', '{replica}')
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, toDate(ts), event_type, path)
TTL toDateTime(ts) + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;
CREATE TABLE IF NOT EXISTS events ON CLUSTER hitstream
AS events_local
ENGINE = Distributed('hitstream', currentDatabase(), 'events_local', cityHash64(site_id));

-- 0001_events down
DROP TABLE IF EXISTS events ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS events_local ON CLUSTER hitstream SYNC;

-- 0002_daily_totals up
CREATE TABLE IF NOT EXISTS daily_totals_local ON CLUSTER hitstream
(
    site_id    LowCardinality(String),
    day        Date,
    event_type LowCardinality(String),
    views      SimpleAggregateFunction(sum, UInt64),
    users      AggregateFunction(uniqExact, String)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/daily_totals_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, event_type)
SETTINGS index_granularity = 32, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;
CREATE TABLE IF NOT EXISTS daily_totals ON CLUSTER hitstream
AS daily_totals_local
ENGINE = Distributed('hitstream', currentDatabase(), 'daily_totals_local', cityHash64(site_id));
CREATE MATERIALIZED VIEW IF NOT EXISTS daily_totals_mv ON CLUSTER hitstream TO daily_totals_local AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    count() AS views,
    uniqExactStateIf(user_id, user_id != '') AS users
FROM events_local
GROUP BY site_id, day, event_type;

-- 0002_daily_totals down
DROP VIEW IF EXISTS daily_totals_mv ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS daily_totals ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS daily_totals_local ON CLUSTER hitstream SYNC;

-- 0003_daily_paths up
CREATE TABLE IF NOT EXISTS daily_paths_local ON CLUSTER hitstream
(
    site_id    LowCardinality(String),
    day        Date,
    event_type LowCardinality(String),
    path       String,
    views      UInt64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/daily_paths_local', '{replica}', views)
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, event_type, path)
SETTINGS index_granularity = 1024, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;
CREATE TABLE IF NOT EXISTS daily_paths ON CLUSTER hitstream
AS daily_paths_local
ENGINE = Distributed('hitstream', currentDatabase(), 'daily_paths_local', cityHash64(site_id));
CREATE MATERIALIZED VIEW IF NOT EXISTS daily_paths_mv ON CLUSTER hitstream TO daily_paths_local AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    path,
    count() AS views
FROM events_local
GROUP BY site_id, day, event_type, path;

-- 0003_daily_paths down
DROP VIEW IF EXISTS daily_paths_mv ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS daily_paths ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS daily_paths_local ON CLUSTER hitstream SYNC;

-- 0004_event_id_index up
ALTER TABLE events_local ON CLUSTER hitstream ADD INDEX IF NOT EXISTS event_id_bloom event_id TYPE bloom_filter(0.001) GRANULARITY 1;

-- 0004_event_id_index down
ALTER TABLE events_local ON CLUSTER hitstream DROP INDEX IF EXISTS event_id_bloom;

-- 0005_registry up
CREATE TABLE IF NOT EXISTS sites_local ON CLUSTER hitstream
(
    site_id         String,
    name            String,
    public          Bool,
    allowed_origins Array(String),
    created_at      DateTime64(3, 'UTC'),
    updated_at      DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/sites_local', '{replica}', updated_at)
ORDER BY site_id;
CREATE TABLE IF NOT EXISTS sites ON CLUSTER hitstream
AS sites_local
ENGINE = Distributed('hitstream', currentDatabase(), 'sites_local', cityHash64(site_id));
CREATE TABLE IF NOT EXISTS api_keys_local ON CLUSTER hitstream
(
    key_id     String,
    site_id    String,
    key_hash   String,
    created_at DateTime64(3, 'UTC'),
    expires_at Nullable(DateTime64(3, 'UTC')),
    revoked    Bool,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/api_keys_local', '{replica}', updated_at)
ORDER BY key_id;
CREATE TABLE IF NOT EXISTS api_keys ON CLUSTER hitstream
AS api_keys_local
ENGINE = Distributed('hitstream', currentDatabase(), 'api_keys_local', cityHash64(key_id));

-- 0005_registry down
DROP TABLE IF EXISTS api_keys ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS api_keys_local ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS sites ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS sites_local ON CLUSTER hitstream SYNC;

-- 0006_api_key_states up
CREATE TABLE IF NOT EXISTS api_key_states_local ON CLUSTER hitstream
(
    key_id     String,
    site_id    SimpleAggregateFunction(any, String),
    key_hash   SimpleAggregateFunction(any, String),
    created_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    expires_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    revoked    SimpleAggregateFunction(max, Bool),
    updated_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/api_key_states_local', '{replica}')
ORDER BY key_id;
CREATE TABLE IF NOT EXISTS api_key_states ON CLUSTER hitstream
AS api_key_states_local
ENGINE = Distributed('hitstream', currentDatabase(), 'api_key_states_local', cityHash64(key_id));
INSERT INTO api_key_states SETTINGS distributed_foreground_insert = 1
SELECT key_id, site_id, key_hash, created_at, expires_at, revoked, updated_at FROM api_keys;

-- 0006_api_key_states down
DROP TABLE IF EXISTS api_key_states ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS api_key_states_local ON CLUSTER hitstream SYNC;

-- 0007_page_context up
ALTER TABLE events_local ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS hostname     LowCardinality(String),
    ADD COLUMN IF NOT EXISTS referrer     String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS utm_source   LowCardinality(String),
    ADD COLUMN IF NOT EXISTS utm_medium   LowCardinality(String),
    ADD COLUMN IF NOT EXISTS utm_campaign LowCardinality(String),
    ADD COLUMN IF NOT EXISTS utm_term     String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS utm_content  String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS props        Map(String, String) CODEC(ZSTD(1));
ALTER TABLE events ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS hostname     LowCardinality(String),
    ADD COLUMN IF NOT EXISTS referrer     String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS utm_source   LowCardinality(String),
    ADD COLUMN IF NOT EXISTS utm_medium   LowCardinality(String),
    ADD COLUMN IF NOT EXISTS utm_campaign LowCardinality(String),
    ADD COLUMN IF NOT EXISTS utm_term     String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS utm_content  String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS props        Map(String, String) CODEC(ZSTD(1));

-- 0007_page_context down
ALTER TABLE events ON CLUSTER hitstream
    DROP COLUMN IF EXISTS hostname,
    DROP COLUMN IF EXISTS referrer,
    DROP COLUMN IF EXISTS utm_source,
    DROP COLUMN IF EXISTS utm_medium,
    DROP COLUMN IF EXISTS utm_campaign,
    DROP COLUMN IF EXISTS utm_term,
    DROP COLUMN IF EXISTS utm_content,
    DROP COLUMN IF EXISTS props;
ALTER TABLE events_local ON CLUSTER hitstream
    DROP COLUMN IF EXISTS hostname,
    DROP COLUMN IF EXISTS referrer,
    DROP COLUMN IF EXISTS utm_source,
    DROP COLUMN IF EXISTS utm_medium,
    DROP COLUMN IF EXISTS utm_campaign,
    DROP COLUMN IF EXISTS utm_term,
    DROP COLUMN IF EXISTS utm_content,
    DROP COLUMN IF EXISTS props;

-- 0008_visitors up
ALTER TABLE events_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS visitor_id UInt64;
ALTER TABLE events ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS visitor_id UInt64;
ALTER TABLE daily_totals_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS visitors AggregateFunction(uniqExact, UInt64);
ALTER TABLE daily_totals ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS visitors AggregateFunction(uniqExact, UInt64);
DROP VIEW IF EXISTS daily_totals_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW daily_totals_mv ON CLUSTER hitstream TO daily_totals_local AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    count() AS views,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactStateIf(visitor_id, visitor_id != 0) AS visitors
FROM events_local
GROUP BY site_id, day, event_type;

-- 0008_visitors down
DROP VIEW IF EXISTS daily_totals_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW daily_totals_mv ON CLUSTER hitstream TO daily_totals_local AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    count() AS views,
    uniqExactStateIf(user_id, user_id != '') AS users
FROM events_local
GROUP BY site_id, day, event_type;
ALTER TABLE daily_totals ON CLUSTER hitstream DROP COLUMN IF EXISTS visitors;
ALTER TABLE daily_totals_local ON CLUSTER hitstream DROP COLUMN IF EXISTS visitors;
ALTER TABLE events ON CLUSTER hitstream DROP COLUMN IF EXISTS visitor_id;
ALTER TABLE events_local ON CLUSTER hitstream DROP COLUMN IF EXISTS visitor_id;

-- 0009_client up
ALTER TABLE events_local ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS browser         LowCardinality(String),
    ADD COLUMN IF NOT EXISTS browser_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS os              LowCardinality(String),
    ADD COLUMN IF NOT EXISTS os_version      LowCardinality(String),
    ADD COLUMN IF NOT EXISTS device          LowCardinality(String),
    ADD COLUMN IF NOT EXISTS country         LowCardinality(String);
ALTER TABLE events ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS browser         LowCardinality(String),
    ADD COLUMN IF NOT EXISTS browser_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS os              LowCardinality(String),
    ADD COLUMN IF NOT EXISTS os_version      LowCardinality(String),
    ADD COLUMN IF NOT EXISTS device          LowCardinality(String),
    ADD COLUMN IF NOT EXISTS country         LowCardinality(String);

-- 0009_client down
ALTER TABLE events ON CLUSTER hitstream
    DROP COLUMN IF EXISTS browser,
    DROP COLUMN IF EXISTS browser_version,
    DROP COLUMN IF EXISTS os,
    DROP COLUMN IF EXISTS os_version,
    DROP COLUMN IF EXISTS device,
    DROP COLUMN IF EXISTS country;
ALTER TABLE events_local ON CLUSTER hitstream
    DROP COLUMN IF EXISTS browser,
    DROP COLUMN IF EXISTS browser_version,
    DROP COLUMN IF EXISTS os,
    DROP COLUMN IF EXISTS os_version,
    DROP COLUMN IF EXISTS device,
    DROP COLUMN IF EXISTS country;

-- 0010_source_engagement up
DROP VIEW IF EXISTS daily_totals_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW daily_totals_mv ON CLUSTER hitstream TO daily_totals_local AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    count() AS views,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactStateIf(visitor_id, visitor_id != 0) AS visitors
FROM events_local
GROUP BY site_id, day, event_type;
ALTER TABLE events_local ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS source           LowCardinality(String),
    ADD COLUMN IF NOT EXISTS interactive      Bool DEFAULT true,
    ADD COLUMN IF NOT EXISTS engagement_ms    UInt32,
    ADD COLUMN IF NOT EXISTS scroll_depth     UInt8,
    ADD COLUMN IF NOT EXISTS revenue_amount   Decimal64(3),
    ADD COLUMN IF NOT EXISTS revenue_currency LowCardinality(String);
ALTER TABLE events ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS source           LowCardinality(String),
    ADD COLUMN IF NOT EXISTS interactive      Bool DEFAULT true,
    ADD COLUMN IF NOT EXISTS engagement_ms    UInt32,
    ADD COLUMN IF NOT EXISTS scroll_depth     UInt8,
    ADD COLUMN IF NOT EXISTS revenue_amount   Decimal64(3),
    ADD COLUMN IF NOT EXISTS revenue_currency LowCardinality(String);
ALTER TABLE sites_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS domains Array(String);
ALTER TABLE sites ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS domains Array(String);

-- 0010_source_engagement down
ALTER TABLE sites ON CLUSTER hitstream DROP COLUMN IF EXISTS domains;
ALTER TABLE sites_local ON CLUSTER hitstream DROP COLUMN IF EXISTS domains;
ALTER TABLE events ON CLUSTER hitstream
    DROP COLUMN IF EXISTS source,
    DROP COLUMN IF EXISTS interactive,
    DROP COLUMN IF EXISTS engagement_ms,
    DROP COLUMN IF EXISTS scroll_depth,
    DROP COLUMN IF EXISTS revenue_amount,
    DROP COLUMN IF EXISTS revenue_currency;
ALTER TABLE events_local ON CLUSTER hitstream
    DROP COLUMN IF EXISTS source,
    DROP COLUMN IF EXISTS interactive,
    DROP COLUMN IF EXISTS engagement_ms,
    DROP COLUMN IF EXISTS scroll_depth,
    DROP COLUMN IF EXISTS revenue_amount,
    DROP COLUMN IF EXISTS revenue_currency;

-- 0011_site_timezone up
ALTER TABLE sites_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS timezone LowCardinality(String) DEFAULT 'UTC';
ALTER TABLE sites ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS timezone LowCardinality(String) DEFAULT 'UTC';

-- 0011_site_timezone down
ALTER TABLE sites ON CLUSTER hitstream DROP COLUMN IF EXISTS timezone;
ALTER TABLE sites_local ON CLUSTER hitstream DROP COLUMN IF EXISTS timezone;

-- 0012_visits up
ALTER TABLE events_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS session_id UInt64;
ALTER TABLE events ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS session_id UInt64;
CREATE TABLE IF NOT EXISTS sessions_local ON CLUSTER hitstream
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/sessions_local', '{replica}')
PARTITION BY toYYYYMM(fromUnixTimestamp64Milli(toInt64(session_id), 'UTC'))
ORDER BY (site_id, toDate(fromUnixTimestamp64Milli(toInt64(session_id), 'UTC')), visitor_id, session_id)
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;
CREATE TABLE IF NOT EXISTS sessions ON CLUSTER hitstream
AS sessions_local
ENGINE = Distributed('hitstream', currentDatabase(), 'sessions_local', cityHash64(site_id));
CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_mv ON CLUSTER hitstream TO sessions_local AS
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    countIf(event_type IN ('pageview', 'page_view')) AS pageviews,
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
    FROM events_local
    WHERE session_id != 0 AND event_type != 'engagement'
)
GROUP BY site_id, visitor_id, session_id;

-- 0012_visits down
DROP VIEW IF EXISTS sessions_mv ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS sessions ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS sessions_local ON CLUSTER hitstream SYNC;
ALTER TABLE events ON CLUSTER hitstream DROP COLUMN IF EXISTS session_id;
ALTER TABLE events_local ON CLUSTER hitstream DROP COLUMN IF EXISTS session_id;

-- 0013_daily_pages up
CREATE TABLE IF NOT EXISTS daily_pages_local ON CLUSTER hitstream
(
    site_id    LowCardinality(String),
    day        Date,
    event_type LowCardinality(String),
    path       String,
    views      SimpleAggregateFunction(sum, UInt64),
    visitors   AggregateFunction(uniqExact, UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/daily_pages_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, event_type, path)
SETTINGS index_granularity = 256, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;
CREATE TABLE IF NOT EXISTS daily_pages ON CLUSTER hitstream
AS daily_pages_local
ENGINE = Distributed('hitstream', currentDatabase(), 'daily_pages_local', cityHash64(site_id));
DROP VIEW IF EXISTS daily_paths_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW IF NOT EXISTS daily_pages_mv ON CLUSTER hitstream TO daily_pages_local AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    path,
    count() AS views,
    uniqExactStateIf(visitor_id, visitor_id != 0) AS visitors
FROM events_local
GROUP BY site_id, day, event_type, path;
CREATE TABLE IF NOT EXISTS daily_paths_local ON CLUSTER hitstream
(
    site_id    LowCardinality(String),
    day        Date,
    event_type LowCardinality(String),
    path       String,
    views      UInt64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/daily_paths_local', '{replica}', views)
ORDER BY (site_id, day, event_type, path);
CREATE TABLE IF NOT EXISTS daily_paths ON CLUSTER hitstream
AS daily_paths_local
ENGINE = Distributed('hitstream', currentDatabase(), 'daily_paths_local', cityHash64(site_id));
INSERT INTO daily_pages
SETTINGS insert_deduplication_token = '0013_daily_pages_views', max_threads = 1, distributed_foreground_insert = 1
SELECT site_id, day, event_type, path, sum(views), uniqExactStateIf(toUInt64(0), 0)
FROM daily_paths
GROUP BY site_id, day, event_type, path
ORDER BY site_id, day, event_type, path;
INSERT INTO daily_pages SETTINGS distributed_foreground_insert = 1
SELECT site_id, toDate(ts) AS day, event_type, path, toUInt64(0),
    uniqExactStateIf(visitor_id, visitor_id != 0)
FROM events
GROUP BY site_id, day, event_type, path;
DROP TABLE IF EXISTS daily_paths ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS daily_paths_local ON CLUSTER hitstream SYNC;

-- 0013_daily_pages down
CREATE TABLE IF NOT EXISTS daily_paths_local ON CLUSTER hitstream
(
    site_id    LowCardinality(String),
    day        Date,
    event_type LowCardinality(String),
    path       String,
    views      UInt64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/daily_paths_local', '{replica}', views)
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, event_type, path)
SETTINGS index_granularity = 1024, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;
CREATE TABLE IF NOT EXISTS daily_paths ON CLUSTER hitstream
AS daily_paths_local
ENGINE = Distributed('hitstream', currentDatabase(), 'daily_paths_local', cityHash64(site_id));
DROP VIEW IF EXISTS daily_pages_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW IF NOT EXISTS daily_paths_mv ON CLUSTER hitstream TO daily_paths_local AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    path,
    count() AS views
FROM events_local
GROUP BY site_id, day, event_type, path;
INSERT INTO daily_paths
SETTINGS insert_deduplication_token = '0013_daily_paths_views', max_threads = 1, distributed_foreground_insert = 1
SELECT site_id, day, event_type, path, sum(views)
FROM daily_pages
GROUP BY site_id, day, event_type, path
ORDER BY site_id, day, event_type, path;
DROP TABLE IF EXISTS daily_pages ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS daily_pages_local ON CLUSTER hitstream SYNC;

-- 0014_share_tokens up
ALTER TABLE api_key_states_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS read_only Bool DEFAULT false;
ALTER TABLE api_key_states ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS read_only Bool DEFAULT false;

-- 0014_share_tokens down
ALTER TABLE api_key_states ON CLUSTER hitstream DROP COLUMN IF EXISTS read_only;
ALTER TABLE api_key_states_local ON CLUSTER hitstream DROP COLUMN IF EXISTS read_only;

-- 0015_site_public_rate up
ALTER TABLE sites_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS public_rate_limit_per_s Float64 DEFAULT 0;
ALTER TABLE sites ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS public_rate_limit_per_s Float64 DEFAULT 0;

-- 0015_site_public_rate down
ALTER TABLE sites ON CLUSTER hitstream DROP COLUMN IF EXISTS public_rate_limit_per_s;
ALTER TABLE sites_local ON CLUSTER hitstream DROP COLUMN IF EXISTS public_rate_limit_per_s;

-- 0016_site_server_events up
ALTER TABLE sites_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS accept_server_events Bool DEFAULT false;
ALTER TABLE sites ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS accept_server_events Bool DEFAULT false;

-- 0016_site_server_events down
ALTER TABLE sites ON CLUSTER hitstream DROP COLUMN IF EXISTS accept_server_events;
ALTER TABLE sites_local ON CLUSTER hitstream DROP COLUMN IF EXISTS accept_server_events;

-- 0017_site_website_id up
ALTER TABLE sites_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS website_id String DEFAULT UUIDNumToString(toFixedString(concat(substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 1, 6), char(bitOr(bitAnd(reinterpretAsUInt8(substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 7, 1)), 15), 80)), substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 8, 1), char(bitOr(bitAnd(reinterpretAsUInt8(substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 9, 1)), 63), 128)), substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 10, 7)), 16));
ALTER TABLE sites ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS website_id String DEFAULT UUIDNumToString(toFixedString(concat(substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 1, 6), char(bitOr(bitAnd(reinterpretAsUInt8(substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 7, 1)), 15), 80)), substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 8, 1), char(bitOr(bitAnd(reinterpretAsUInt8(substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 9, 1)), 63), 128)), substring(SHA1(concat(unhex('0f5e1a3c8b7d4e2a9c613d2b7f4a5e90'), site_id)), 10, 7)), 16));

-- 0017_site_website_id down
ALTER TABLE sites ON CLUSTER hitstream DROP COLUMN IF EXISTS website_id;
ALTER TABLE sites_local ON CLUSTER hitstream DROP COLUMN IF EXISTS website_id;

-- 0018_plausible_names up
ALTER TABLE events_local ON CLUSTER hitstream UPDATE browser = transform(browser, ['Mobile Safari', 'Chrome Mobile iOS', 'Chrome Mobile', 'Firefox iOS', 'Firefox Mobile', 'Opera Mobile', 'Opera Mini', 'Edge Mobile', 'Edge', 'Samsung Internet', 'IE', 'IE Mobile', 'Yandex Browser Lite', 'Chrome Mobile WebView', 'Mobile Safari UI/WKWebView', 'Facebook', 'Instagram'], ['Safari', 'Chrome', 'Chrome', 'Firefox', 'Firefox', 'Opera', 'Opera', 'Microsoft Edge', 'Microsoft Edge', 'Samsung Browser', 'Internet Explorer', 'Internet Explorer', 'Yandex Browser', 'Mobile App', 'Mobile App', 'Mobile App', 'Mobile App'], browser),
    browser_version = if(browser IN ('Chrome Mobile WebView', 'Mobile Safari UI/WKWebView', 'Facebook', 'Instagram'), '', browser_version),
    os = if(os = 'iOS' AND device = 'tablet', 'iPadOS', transform(os, ['Mac OS X', 'Linux'], ['Mac', 'GNU/Linux'], os)),
    device = transform(device, ['desktop', 'mobile', 'tablet'], ['Desktop', 'Mobile', 'Tablet'], device),
    source = transform(source, ['Yahoo', 'VK', 'Gemini', 'Copilot', 'YouTube'], ['Yahoo!', 'Vkontakte', 'Google Gemini', 'Microsoft Copilot', 'Youtube'], source),
    referrer = replaceRegexpOne(replaceRegexpOne(referrer, '^(www\\.)+', ''), '/+$', '')
WHERE browser IN ('Mobile Safari', 'Chrome Mobile iOS', 'Chrome Mobile', 'Firefox iOS', 'Firefox Mobile', 'Opera Mobile', 'Opera Mini', 'Edge Mobile', 'Edge', 'Samsung Internet', 'IE', 'IE Mobile', 'Yandex Browser Lite', 'Chrome Mobile WebView', 'Mobile Safari UI/WKWebView', 'Facebook', 'Instagram') OR os IN ('Mac OS X', 'Linux') OR (os = 'iOS' AND device = 'tablet') OR device IN ('desktop', 'mobile', 'tablet') OR source IN ('Yahoo', 'VK', 'Gemini', 'Copilot', 'YouTube') OR match(referrer, '^(www\\.)+|/+$') SETTINGS mutations_sync = 2;
ALTER TABLE sessions_local ON CLUSTER hitstream UPDATE browser = transform(browser, ['Mobile Safari', 'Chrome Mobile iOS', 'Chrome Mobile', 'Firefox iOS', 'Firefox Mobile', 'Opera Mobile', 'Opera Mini', 'Edge Mobile', 'Edge', 'Samsung Internet', 'IE', 'IE Mobile', 'Yandex Browser Lite', 'Chrome Mobile WebView', 'Mobile Safari UI/WKWebView', 'Facebook', 'Instagram'], ['Safari', 'Chrome', 'Chrome', 'Firefox', 'Firefox', 'Opera', 'Opera', 'Microsoft Edge', 'Microsoft Edge', 'Samsung Browser', 'Internet Explorer', 'Internet Explorer', 'Yandex Browser', 'Mobile App', 'Mobile App', 'Mobile App', 'Mobile App'], browser),
    browser_version = if(browser IN ('Chrome Mobile WebView', 'Mobile Safari UI/WKWebView', 'Facebook', 'Instagram'), '', browser_version),
    os = if(os = 'iOS' AND device = 'tablet', 'iPadOS', transform(os, ['Mac OS X', 'Linux'], ['Mac', 'GNU/Linux'], os)),
    device = transform(device, ['desktop', 'mobile', 'tablet'], ['Desktop', 'Mobile', 'Tablet'], device),
    source = transform(source, ['Yahoo', 'VK', 'Gemini', 'Copilot', 'YouTube'], ['Yahoo!', 'Vkontakte', 'Google Gemini', 'Microsoft Copilot', 'Youtube'], source),
    referrer = replaceRegexpOne(replaceRegexpOne(referrer, '^(www\\.)+', ''), '/+$', '')
WHERE browser IN ('Mobile Safari', 'Chrome Mobile iOS', 'Chrome Mobile', 'Firefox iOS', 'Firefox Mobile', 'Opera Mobile', 'Opera Mini', 'Edge Mobile', 'Edge', 'Samsung Internet', 'IE', 'IE Mobile', 'Yandex Browser Lite', 'Chrome Mobile WebView', 'Mobile Safari UI/WKWebView', 'Facebook', 'Instagram') OR os IN ('Mac OS X', 'Linux') OR (os = 'iOS' AND device = 'tablet') OR device IN ('desktop', 'mobile', 'tablet') OR source IN ('Yahoo', 'VK', 'Gemini', 'Copilot', 'YouTube') OR match(referrer, '^(www\\.)+|/+$') SETTINGS mutations_sync = 2;

-- 0018_plausible_names down
ALTER TABLE sessions_local ON CLUSTER hitstream UPDATE browser = multiIf(browser = 'Safari' AND os IN ('iOS', 'iPadOS'), 'Mobile Safari', browser = 'Chrome' AND os IN ('iOS', 'iPadOS'), 'Chrome Mobile iOS', browser = 'Chrome' AND os IN ('Android') AND device = 'Mobile', 'Chrome Mobile', browser = 'Firefox' AND os IN ('iOS', 'iPadOS'), 'Firefox iOS', browser = 'Firefox' AND os IN ('Android'), 'Firefox Mobile', browser = 'Opera' AND os IN ('Android') AND device = 'Mobile', 'Opera Mobile', browser = 'Microsoft Edge' AND os IN ('Android'), 'Edge Mobile', browser = 'Microsoft Edge', 'Edge', browser = 'Samsung Browser', 'Samsung Internet', browser = 'Internet Explorer', 'IE', browser = 'Mobile App' AND os IN ('Android'), 'Chrome Mobile WebView', browser = 'Mobile App' AND os IN ('iOS', 'iPadOS'), 'Mobile Safari UI/WKWebView', browser),
    os = transform(os, ['Mac', 'GNU/Linux', 'iPadOS'], ['Mac OS X', 'Linux', 'iOS'], os),
    device = transform(device, ['Desktop', 'Mobile', 'Tablet'], ['desktop', 'mobile', 'tablet'], device),
    source = transform(source, ['Yahoo!', 'Vkontakte', 'Google Gemini', 'Microsoft Copilot', 'Youtube'], ['Yahoo', 'VK', 'Gemini', 'Copilot', 'YouTube'], source)
WHERE browser IN ('Chrome', 'Firefox', 'Internet Explorer', 'Microsoft Edge', 'Mobile App', 'Opera', 'Safari', 'Samsung Browser') OR os IN ('Mac', 'GNU/Linux', 'iPadOS') OR device IN ('Desktop', 'Mobile', 'Tablet') OR source IN ('Yahoo!', 'Vkontakte', 'Google Gemini', 'Microsoft Copilot', 'Youtube') SETTINGS mutations_sync = 2;
ALTER TABLE events_local ON CLUSTER hitstream UPDATE browser = multiIf(browser = 'Safari' AND os IN ('iOS', 'iPadOS'), 'Mobile Safari', browser = 'Chrome' AND os IN ('iOS', 'iPadOS'), 'Chrome Mobile iOS', browser = 'Chrome' AND os IN ('Android') AND device = 'Mobile', 'Chrome Mobile', browser = 'Firefox' AND os IN ('iOS', 'iPadOS'), 'Firefox iOS', browser = 'Firefox' AND os IN ('Android'), 'Firefox Mobile', browser = 'Opera' AND os IN ('Android') AND device = 'Mobile', 'Opera Mobile', browser = 'Microsoft Edge' AND os IN ('Android'), 'Edge Mobile', browser = 'Microsoft Edge', 'Edge', browser = 'Samsung Browser', 'Samsung Internet', browser = 'Internet Explorer', 'IE', browser = 'Mobile App' AND os IN ('Android'), 'Chrome Mobile WebView', browser = 'Mobile App' AND os IN ('iOS', 'iPadOS'), 'Mobile Safari UI/WKWebView', browser),
    os = transform(os, ['Mac', 'GNU/Linux', 'iPadOS'], ['Mac OS X', 'Linux', 'iOS'], os),
    device = transform(device, ['Desktop', 'Mobile', 'Tablet'], ['desktop', 'mobile', 'tablet'], device),
    source = transform(source, ['Yahoo!', 'Vkontakte', 'Google Gemini', 'Microsoft Copilot', 'Youtube'], ['Yahoo', 'VK', 'Gemini', 'Copilot', 'YouTube'], source)
WHERE browser IN ('Chrome', 'Firefox', 'Internet Explorer', 'Microsoft Edge', 'Mobile App', 'Opera', 'Safari', 'Samsung Browser') OR os IN ('Mac', 'GNU/Linux', 'iPadOS') OR device IN ('Desktop', 'Mobile', 'Tablet') OR source IN ('Yahoo!', 'Vkontakte', 'Google Gemini', 'Microsoft Copilot', 'Youtube') SETTINGS mutations_sync = 2;

-- 0019_goals up
CREATE TABLE IF NOT EXISTS goals_local ON CLUSTER hitstream
(
    site_id      String,
    goal_id      UInt64,
    event_name   String,
    page_path    String,
    display_name String,
    currency     String,
    deleted      Bool,
    created_at   DateTime64(3, 'UTC'),
    updated_at   DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/goals_local', '{replica}', updated_at)
ORDER BY (site_id, goal_id);
CREATE TABLE IF NOT EXISTS goals ON CLUSTER hitstream
AS goals_local
ENGINE = Distributed('hitstream', currentDatabase(), 'goals_local', cityHash64(site_id));
ALTER TABLE sites_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS deleted Bool DEFAULT false;
ALTER TABLE sites ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS deleted Bool DEFAULT false;

-- 0019_goals down
ALTER TABLE sites ON CLUSTER hitstream DROP COLUMN IF EXISTS deleted;
ALTER TABLE sites_local ON CLUSTER hitstream DROP COLUMN IF EXISTS deleted;
DROP TABLE IF EXISTS goals ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS goals_local ON CLUSTER hitstream SYNC;

-- 0020_channels_hostnames up
ALTER TABLE events_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS click_id_param LowCardinality(String);
ALTER TABLE events ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS click_id_param LowCardinality(String);
ALTER TABLE sessions_local ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS click_id_param SimpleAggregateFunction(max, LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS exit_hostname AggregateFunction(argMax, String, DateTime64(3, 'UTC'));
ALTER TABLE sessions ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS click_id_param SimpleAggregateFunction(max, LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS exit_hostname AggregateFunction(argMax, String, DateTime64(3, 'UTC'));
DROP VIEW IF EXISTS sessions_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW sessions_mv ON CLUSTER hitstream TO sessions_local AS
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    countIf(event_type IN ('pageview', 'page_view')) AS pageviews,
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
    maxIf(country, opener) AS country,
    maxIf(click_id_param, opener) AS click_id_param,
    argMaxState(page_hostname, ts) AS exit_hostname
FROM (
    SELECT *, toUnixTimestamp64Milli(ts) = toInt64(session_id) AS opener,
        CAST(hostname, 'String') AS page_hostname
    FROM events_local
    WHERE session_id != 0 AND event_type != 'engagement'
)
GROUP BY site_id, visitor_id, session_id;

-- 0020_channels_hostnames down
DROP VIEW IF EXISTS sessions_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW sessions_mv ON CLUSTER hitstream TO sessions_local AS
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    countIf(event_type IN ('pageview', 'page_view')) AS pageviews,
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
    FROM events_local
    WHERE session_id != 0 AND event_type != 'engagement'
)
GROUP BY site_id, visitor_id, session_id;
ALTER TABLE sessions ON CLUSTER hitstream
    DROP COLUMN IF EXISTS click_id_param,
    DROP COLUMN IF EXISTS exit_hostname;
ALTER TABLE sessions_local ON CLUSTER hitstream
    DROP COLUMN IF EXISTS click_id_param,
    DROP COLUMN IF EXISTS exit_hostname;
ALTER TABLE events ON CLUSTER hitstream DROP COLUMN IF EXISTS click_id_param;
ALTER TABLE events_local ON CLUSTER hitstream DROP COLUMN IF EXISTS click_id_param;

-- 0021_interactions up
ALTER TABLE sessions_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS interactions SimpleAggregateFunction(sum, UInt64);
ALTER TABLE sessions ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS interactions SimpleAggregateFunction(sum, UInt64);
CREATE MATERIALIZED VIEW IF NOT EXISTS session_interactions_mv ON CLUSTER hitstream TO sessions_local AS
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    argMaxState(path, ts) AS exit_page,
    count() AS interactions
FROM events_local
WHERE session_id != 0 AND interactive
  AND event_type NOT IN ('pageview', 'page_view') AND event_type != 'engagement'
GROUP BY site_id, visitor_id, session_id;
INSERT INTO sessions (site_id, visitor_id, session_id, start, end, exit_page, interactions) SETTINGS distributed_foreground_insert = 1
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    argMaxState(path, ts) AS exit_page,
    count() AS interactions
FROM events
WHERE session_id != 0 AND interactive
  AND event_type NOT IN ('pageview', 'page_view') AND event_type != 'engagement'
GROUP BY site_id, visitor_id, session_id;

-- 0021_interactions down
DROP VIEW IF EXISTS session_interactions_mv ON CLUSTER hitstream SYNC;
ALTER TABLE sessions ON CLUSTER hitstream DROP COLUMN IF EXISTS interactions;
ALTER TABLE sessions_local ON CLUSTER hitstream DROP COLUMN IF EXISTS interactions;

-- 0022_places up
ALTER TABLE events_local ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS region LowCardinality(String),
    ADD COLUMN IF NOT EXISTS region_name LowCardinality(String),
    ADD COLUMN IF NOT EXISTS city_name LowCardinality(String);
ALTER TABLE events ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS region LowCardinality(String),
    ADD COLUMN IF NOT EXISTS region_name LowCardinality(String),
    ADD COLUMN IF NOT EXISTS city_name LowCardinality(String);
ALTER TABLE sessions_local ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS region SimpleAggregateFunction(max, LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS region_name SimpleAggregateFunction(max, LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS city_name SimpleAggregateFunction(max, LowCardinality(String));
ALTER TABLE sessions ON CLUSTER hitstream
    ADD COLUMN IF NOT EXISTS region SimpleAggregateFunction(max, LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS region_name SimpleAggregateFunction(max, LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS city_name SimpleAggregateFunction(max, LowCardinality(String));
DROP VIEW IF EXISTS sessions_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW sessions_mv ON CLUSTER hitstream TO sessions_local AS
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    countIf(event_type IN ('pageview', 'page_view')) AS pageviews,
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
    maxIf(country, opener) AS country,
    maxIf(click_id_param, opener) AS click_id_param,
    argMaxState(page_hostname, ts) AS exit_hostname,
    maxIf(region, opener) AS region,
    maxIf(region_name, opener) AS region_name,
    maxIf(city_name, opener) AS city_name
FROM (
    SELECT *, toUnixTimestamp64Milli(ts) = toInt64(session_id) AS opener,
        CAST(hostname, 'String') AS page_hostname
    FROM events_local
    WHERE session_id != 0 AND event_type != 'engagement'
)
GROUP BY site_id, visitor_id, session_id;

-- 0022_places down
DROP VIEW IF EXISTS sessions_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW sessions_mv ON CLUSTER hitstream TO sessions_local AS
SELECT
    site_id,
    visitor_id,
    session_id,
    min(ts) AS start,
    max(ts) AS end,
    countIf(event_type IN ('pageview', 'page_view')) AS pageviews,
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
    maxIf(country, opener) AS country,
    maxIf(click_id_param, opener) AS click_id_param,
    argMaxState(page_hostname, ts) AS exit_hostname
FROM (
    SELECT *, toUnixTimestamp64Milli(ts) = toInt64(session_id) AS opener,
        CAST(hostname, 'String') AS page_hostname
    FROM events_local
    WHERE session_id != 0 AND event_type != 'engagement'
)
GROUP BY site_id, visitor_id, session_id;
ALTER TABLE sessions ON CLUSTER hitstream
    DROP COLUMN IF EXISTS region,
    DROP COLUMN IF EXISTS region_name,
    DROP COLUMN IF EXISTS city_name;
ALTER TABLE sessions_local ON CLUSTER hitstream
    DROP COLUMN IF EXISTS region,
    DROP COLUMN IF EXISTS region_name,
    DROP COLUMN IF EXISTS city_name;
ALTER TABLE events ON CLUSTER hitstream
    DROP COLUMN IF EXISTS region,
    DROP COLUMN IF EXISTS region_name,
    DROP COLUMN IF EXISTS city_name;
ALTER TABLE events_local ON CLUSTER hitstream
    DROP COLUMN IF EXISTS region,
    DROP COLUMN IF EXISTS region_name,
    DROP COLUMN IF EXISTS city_name;

-- 0023_visitor_numbers up
ALTER TABLE events_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS visitor_no UInt64;
ALTER TABLE events ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS visitor_no UInt64;
ALTER TABLE daily_pages_local ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS numbered AggregateFunction(groupBitmap, UInt64);
ALTER TABLE daily_pages ON CLUSTER hitstream ADD COLUMN IF NOT EXISTS numbered AggregateFunction(groupBitmap, UInt64);
DROP VIEW IF EXISTS daily_pages_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW daily_pages_mv ON CLUSTER hitstream TO daily_pages_local AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    path,
    count() AS views,
    uniqExactStateIf(visitor_id, visitor_id != 0 AND visitor_no = 0) AS visitors,
    groupBitmapStateIf(visitor_no, visitor_no != 0) AS numbered
FROM events_local
GROUP BY site_id, day, event_type, path;

-- 0023_visitor_numbers down
DROP VIEW IF EXISTS daily_pages_mv ON CLUSTER hitstream SYNC;
CREATE MATERIALIZED VIEW daily_pages_mv ON CLUSTER hitstream TO daily_pages_local AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    path,
    count() AS views,
    uniqExactStateIf(visitor_id, visitor_id != 0) AS visitors
FROM events_local
GROUP BY site_id, day, event_type, path;
INSERT INTO daily_pages (site_id, day, event_type, path, views, visitors) SETTINGS distributed_foreground_insert = 1
SELECT site_id, toDate(ts) AS day, event_type, path, toUInt64(0),
    uniqExactStateIf(visitor_id, visitor_no != 0)
FROM events
GROUP BY site_id, day, event_type, path;
ALTER TABLE daily_pages ON CLUSTER hitstream DROP COLUMN IF EXISTS numbered;
ALTER TABLE daily_pages_local ON CLUSTER hitstream DROP COLUMN IF EXISTS numbered;
ALTER TABLE events ON CLUSTER hitstream DROP COLUMN IF EXISTS visitor_no;
ALTER TABLE events_local ON CLUSTER hitstream DROP COLUMN IF EXISTS visitor_no;

-- 0024_daily_visits up
CREATE TABLE IF NOT EXISTS daily_visits_local ON CLUSTER hitstream
(
    site_id   LowCardinality(String),
    dimension LowCardinality(String),
    day       Date,
    value     String,
    visitors  AggregateFunction(uniqExact, UInt64),
    numbered  AggregateFunction(groupBitmap, UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/daily_visits_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, dimension, day, value)
SETTINGS index_granularity = 256, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;
CREATE TABLE IF NOT EXISTS daily_visits ON CLUSTER hitstream
AS daily_visits_local
ENGINE = Distributed('hitstream', currentDatabase(), 'daily_visits_local', cityHash64(site_id));
CREATE MATERIALIZED VIEW IF NOT EXISTS daily_visits_mv ON CLUSTER hitstream TO daily_visits_local AS
SELECT
    site_id,
    pair.1 AS dimension,
    toDate(ts) AS day,
    pair.2 AS value,
    uniqExactStateIf(visitor_id, visitor_no = 0) AS visitors,
    groupBitmapStateIf(visitor_no, visitor_no != 0) AS numbered
FROM (
    SELECT * FROM events_local
    WHERE session_id != 0 AND event_type != 'engagement'
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
INSERT INTO daily_visits
SETTINGS insert_deduplication_token = '0024_daily_visits_sessions', max_threads = 1,
    max_bytes_before_external_group_by = 268435456, distributed_foreground_insert = 1
SELECT site_id, pair.1 AS dimension, toDate(fromUnixTimestamp64Milli(toInt64(session_id), 'UTC')) AS day, pair.2 AS value,
    uniqExactState(visitor_id), groupBitmapStateIf(toUInt64(0), 0)
FROM (
    SELECT * FROM sessions FINAL
    WHERE toDate(fromUnixTimestamp64Milli(toInt64(session_id), 'UTC')) < (
        SELECT if(min(ts) > (SELECT min(fromUnixTimestamp64Milli(toInt64(session_id), 'UTC')) FROM sessions),
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
INSERT INTO daily_visits
SETTINGS insert_deduplication_token = '0024_daily_visits_events', max_threads = 1,
    max_bytes_before_external_group_by = 268435456, distributed_foreground_insert = 1
SELECT site_id, pair.1 AS dimension, toDate(ts) AS day, pair.2 AS value,
    uniqExactStateIf(visitor_id, visitor_no = 0),
    groupBitmapStateIf(visitor_no, visitor_no != 0)
FROM (
    SELECT * FROM events
    WHERE session_id != 0 AND event_type != 'engagement'
      AND toUnixTimestamp64Milli(ts) = toInt64(session_id)
      AND toDate(ts) >= (
        SELECT if(min(ts) > (SELECT min(fromUnixTimestamp64Milli(toInt64(session_id), 'UTC')) FROM sessions),
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
ORDER BY site_id, dimension, day, value;

-- 0024_daily_visits down
DROP VIEW IF EXISTS daily_visits_mv ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS daily_visits ON CLUSTER hitstream SYNC;
DROP TABLE IF EXISTS daily_visits_local ON CLUSTER hitstream SYNC;

-- 0025_merge_memory up
ALTER TABLE events_local ON CLUSTER hitstream MODIFY SETTING merge_max_block_size = 1024,
    vertical_merge_algorithm_min_rows_to_activate = 1,
    vertical_merge_algorithm_min_columns_to_activate = 1;
ALTER TABLE sessions_local ON CLUSTER hitstream MODIFY SETTING merge_max_block_size = 1024;
ALTER TABLE daily_totals_local ON CLUSTER hitstream MODIFY SETTING merge_max_block_size = 1024;
ALTER TABLE daily_pages_local ON CLUSTER hitstream MODIFY SETTING merge_max_block_size = 1024;
ALTER TABLE daily_visits_local ON CLUSTER hitstream MODIFY SETTING merge_max_block_size = 1024;

-- 0025_merge_memory down
ALTER TABLE events_local ON CLUSTER hitstream RESET SETTING merge_max_block_size,
    vertical_merge_algorithm_min_rows_to_activate,
    vertical_merge_algorithm_min_columns_to_activate;
ALTER TABLE sessions_local ON CLUSTER hitstream RESET SETTING merge_max_block_size;
ALTER TABLE daily_totals_local ON CLUSTER hitstream RESET SETTING merge_max_block_size;
ALTER TABLE daily_pages_local ON CLUSTER hitstream RESET SETTING merge_max_block_size;
ALTER TABLE daily_visits_local ON CLUSTER hitstream RESET SETTING merge_max_block_size;

-- 0026_visit_merge_blocks up
ALTER TABLE sessions_local ON CLUSTER hitstream MODIFY SETTING max_compress_block_size = 65536,
    min_compress_block_size = 16384;

-- 0026_visit_merge_blocks down
ALTER TABLE sessions_local ON CLUSTER hitstream RESET SETTING max_compress_block_size, min_compress_block_size;

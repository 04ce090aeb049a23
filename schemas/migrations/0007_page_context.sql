-- What an event tells about its page and where the visitor came from: the page's
-- hostname, the referrer (host and path only), the UTM tags and custom properties.
-- Existing rows get empty values; the aggregate tables are untouched.
-- up
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS hostname     LowCardinality(String),
    ADD COLUMN IF NOT EXISTS referrer     String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS utm_source   LowCardinality(String),
    ADD COLUMN IF NOT EXISTS utm_medium   LowCardinality(String),
    ADD COLUMN IF NOT EXISTS utm_campaign LowCardinality(String),
    ADD COLUMN IF NOT EXISTS utm_term     String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS utm_content  String CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS props        Map(String, String) CODEC(ZSTD(1))
-- down
ALTER TABLE events
    DROP COLUMN IF EXISTS hostname,
    DROP COLUMN IF EXISTS referrer,
    DROP COLUMN IF EXISTS utm_source,
    DROP COLUMN IF EXISTS utm_medium,
    DROP COLUMN IF EXISTS utm_campaign,
    DROP COLUMN IF EXISTS utm_term,
    DROP COLUMN IF EXISTS utm_content,
    DROP COLUMN IF EXISTS props

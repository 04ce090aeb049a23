-- Raw events, one row per accepted event. Partitioned by month, ordered for
-- per-site-per-day reads, expired after HITSTREAM_RAW_TTL_DAYS. The dedup window
-- makes a re-sent batch (same insert_deduplication_token) a no-op.
-- up
CREATE TABLE IF NOT EXISTS events
(
    event_id    UUID,
    site_id     LowCardinality(String),
    event_type  LowCardinality(String),
    path        String CODEC(ZSTD(1)),
    user_id     String CODEC(ZSTD(1)),
    ts          DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    received_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, toDate(ts), event_type, path)
TTL toDateTime(ts) + INTERVAL {raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 10000
-- down
DROP TABLE IF EXISTS events

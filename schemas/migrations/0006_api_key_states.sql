-- API keys whose rows merge instead of replacing each other: a revocation is for good
-- (max) and an expiry only moves earlier (min), whatever order concurrent writes land
-- in (a rotation that read a key before its revocation wrote a later, unrevoked row,
-- and ReplacingMergeTree kept that one). Keys written by 0005 are copied over; the old
-- table is left unread (the copy is repeatable if this step is interrupted).
-- up
CREATE TABLE IF NOT EXISTS api_key_states
(
    key_id     String,
    site_id    SimpleAggregateFunction(any, String),
    key_hash   SimpleAggregateFunction(any, String),
    created_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    expires_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    revoked    SimpleAggregateFunction(max, Bool),
    updated_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY key_id;

INSERT INTO api_key_states
SELECT key_id, site_id, key_hash, created_at, expires_at, revoked, updated_at FROM api_keys
-- down
DROP TABLE IF EXISTS api_key_states

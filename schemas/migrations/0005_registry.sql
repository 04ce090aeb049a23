-- The site registry's durable home: sites and their API keys (only a SHA-256 of
-- each key's secret). ReplacingMergeTree by updated_at: an update is a new row,
-- read back with FINAL. Redis holds a cache of it for ingest (hitstream/registry.py).
-- up
CREATE TABLE IF NOT EXISTS sites
(
    site_id         String,
    name            String,
    public          Bool,
    allowed_origins Array(String),
    created_at      DateTime64(3, 'UTC'),
    updated_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY site_id;

CREATE TABLE IF NOT EXISTS api_keys
(
    key_id     String,
    site_id    String,
    key_hash   String,
    created_at DateTime64(3, 'UTC'),
    expires_at Nullable(DateTime64(3, 'UTC')),
    revoked    Bool,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY key_id
-- down
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS sites

-- Goals, stored once per site (Plausible's event and page goals, its Sites API v1 and
-- hitstream's /api/sites/{site_id}/goals write them): every change is a new row and the
-- latest (updated_at) wins, a deletion being a row with `deleted`; Redis caches the live
-- ones for reporting (sites/cache.py), rebuilt from here. Sites gain `deleted` too
-- (DELETE /api/v1/sites/{site_id}): a deleted site is no longer listed or cached, its keys
-- are revoked, and its events stay until the raw retention drops them.
-- up
CREATE TABLE IF NOT EXISTS goals
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
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (site_id, goal_id);

ALTER TABLE sites ADD COLUMN IF NOT EXISTS deleted Bool DEFAULT false
-- down
ALTER TABLE sites DROP COLUMN IF EXISTS deleted;
DROP TABLE IF EXISTS goals

-- Where a visit came from (the referrer's or the campaign's source, ingest/attribution.py),
-- what Plausible's tracker and Events API carry besides (interactive, engagement time
-- and scroll depth of `engagement` events, revenue), and the domains a site answers to
-- (Plausible's `domain`). Existing rows get empty values; aggregates are untouched.
-- daily_totals_mv is re-created as 0008 now creates it, for installs that ran 0008
-- when it changed the view with MODIFY QUERY (such a view counted an insert replayed
-- after an engine restart twice); stop consumers while migrating.
-- up
DROP VIEW IF EXISTS daily_totals_mv;
CREATE MATERIALIZED VIEW daily_totals_mv TO daily_totals AS
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    count() AS views,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactStateIf(visitor_id, visitor_id != 0) AS visitors
FROM events
GROUP BY site_id, day, event_type;
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS source           LowCardinality(String),
    ADD COLUMN IF NOT EXISTS interactive      Bool DEFAULT true,
    ADD COLUMN IF NOT EXISTS engagement_ms    UInt32,
    ADD COLUMN IF NOT EXISTS scroll_depth     UInt8,
    ADD COLUMN IF NOT EXISTS revenue_amount   Decimal64(3),
    ADD COLUMN IF NOT EXISTS revenue_currency LowCardinality(String);
ALTER TABLE sites ADD COLUMN IF NOT EXISTS domains Array(String)
-- down
ALTER TABLE sites DROP COLUMN IF EXISTS domains;
ALTER TABLE events
    DROP COLUMN IF EXISTS source,
    DROP COLUMN IF EXISTS interactive,
    DROP COLUMN IF EXISTS engagement_ms,
    DROP COLUMN IF EXISTS scroll_depth,
    DROP COLUMN IF EXISTS revenue_amount,
    DROP COLUMN IF EXISTS revenue_currency

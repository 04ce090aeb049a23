-- Unique visitors: each event's visitor ID (a salted hash, ingest/visitors.py) and a
-- per-day exact state of them beside the users'. Rows written before have visitor 0
-- and add nothing to the state: days before this migration report 0 visitors.
-- MODIFY QUERY swaps the view's query atomically (no insert misses it).
-- up
ALTER TABLE events ADD COLUMN IF NOT EXISTS visitor_id UInt64;
ALTER TABLE daily_totals ADD COLUMN IF NOT EXISTS visitors AggregateFunction(uniqExact, UInt64);
ALTER TABLE daily_totals_mv MODIFY QUERY
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    count() AS views,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqExactStateIf(visitor_id, visitor_id != 0) AS visitors
FROM events
GROUP BY site_id, day, event_type
-- down
ALTER TABLE daily_totals_mv MODIFY QUERY
SELECT
    site_id,
    toDate(ts) AS day,
    event_type,
    count() AS views,
    uniqExactStateIf(user_id, user_id != '') AS users
FROM events
GROUP BY site_id, day, event_type;
ALTER TABLE daily_totals DROP COLUMN IF EXISTS visitors;
ALTER TABLE events DROP COLUMN IF EXISTS visitor_id

-- Unique visitors: each event's visitor ID (a salted hash, ingest/visitors.py) and a
-- per-day exact state of them beside the users'. Rows written before have visitor 0
-- and add nothing to the state: days before this migration report 0 visitors.
-- The view is dropped and created again, not changed with MODIFY QUERY: a view whose
-- query was modified computes different deduplication IDs for its blocks before and
-- after the engine restarts (measured on chdb), so an insert interrupted by a crash
-- and replayed after the restart was written twice into daily_totals. Inserts running
-- between the DROP and the CREATE would miss the view: stop consumers to upgrade (at
-- start-up, `serve` migrates before its consumer runs).
-- up
ALTER TABLE events ADD COLUMN IF NOT EXISTS visitor_id UInt64;
ALTER TABLE daily_totals ADD COLUMN IF NOT EXISTS visitors AggregateFunction(uniqExact, UInt64);
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
GROUP BY site_id, day, event_type
-- down
DROP VIEW IF EXISTS daily_totals_mv;
CREATE MATERIALIZED VIEW daily_totals_mv TO daily_totals AS
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

-- Plausible's bounce (reporting/metrics.py): a visit with fewer than two page views and
-- no interactive custom event (an event is interactive unless sent with
-- `interactive: false`; engagement events are no part of a visit). `sessions` counts a
-- visit's interactive events other than page views in `interactions`, kept by a view of
-- its own, session_interactions_mv, beside sessions_mv (which is left as it is, so no
-- insert can miss it while this runs): for each visit with such events it writes a row
-- holding their count, their bounds and last path (merged by min, max and argMax with the
-- visit's own row) and nothing else (0 page views and events, empty names, which the
-- merge leaves to the visit's row). Visits stored before: their interactive events still
-- in the raw events are counted by the INSERT below (run twice, it counts them twice,
-- which changes no bounce: only interactions = 0 is read); visits whose raw events have
-- expired keep 0: one of one page view and custom events is a bounce, as it was before
-- this migration, and one of custom events alone (no page view) now is one too.
-- up
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS interactions SimpleAggregateFunction(sum, UInt64);
CREATE MATERIALIZED VIEW IF NOT EXISTS session_interactions_mv TO sessions AS
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
  AND event_type NOT IN ({pageview_names}) AND event_type != {engagement_name}
GROUP BY site_id, visitor_id, session_id;
INSERT INTO sessions (site_id, visitor_id, session_id, start, end, exit_page, interactions)
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
  AND event_type NOT IN ({pageview_names}) AND event_type != {engagement_name}
GROUP BY site_id, visitor_id, session_id
-- down
DROP VIEW IF EXISTS session_interactions_mv;
ALTER TABLE sessions DROP COLUMN IF EXISTS interactions

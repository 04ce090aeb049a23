-- A bloom-filter skip index on event_id, so the consumers' "already stored?" check
-- for redelivered batches and client-supplied event IDs reads few granules.
-- up
ALTER TABLE events ADD INDEX IF NOT EXISTS event_id_bloom event_id TYPE bloom_filter(0.001) GRANULARITY 1
-- down
ALTER TABLE events DROP INDEX IF EXISTS event_id_bloom

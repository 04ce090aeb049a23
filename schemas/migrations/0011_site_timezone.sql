-- A site's IANA time zone: the days, weeks and months of its stats queries are local
-- ones (reporting/periods.py). Existing sites keep UTC.
-- up
ALTER TABLE sites ADD COLUMN IF NOT EXISTS timezone LowCardinality(String) DEFAULT 'UTC'
-- down
ALTER TABLE sites DROP COLUMN IF EXISTS timezone

-- What ingest derives about the visitor's software and place: browser and OS with
-- their versions, the device type, the country. Never the User-Agent or the address.
-- up
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS browser         LowCardinality(String),
    ADD COLUMN IF NOT EXISTS browser_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS os              LowCardinality(String),
    ADD COLUMN IF NOT EXISTS os_version      LowCardinality(String),
    ADD COLUMN IF NOT EXISTS device          LowCardinality(String),
    ADD COLUMN IF NOT EXISTS country         LowCardinality(String)
-- down
ALTER TABLE events
    DROP COLUMN IF EXISTS browser,
    DROP COLUMN IF EXISTS browser_version,
    DROP COLUMN IF EXISTS os,
    DROP COLUMN IF EXISTS os_version,
    DROP COLUMN IF EXISTS device,
    DROP COLUMN IF EXISTS country

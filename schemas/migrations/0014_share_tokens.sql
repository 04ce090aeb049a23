-- Read-only keys: a site's shared links (the dashboard's /share/<site>) carry one. They
-- read that site's stats and cannot send events; existing keys keep both rights.
-- up
ALTER TABLE api_key_states ADD COLUMN IF NOT EXISTS read_only Bool DEFAULT false
-- down
ALTER TABLE api_key_states DROP COLUMN IF EXISTS read_only

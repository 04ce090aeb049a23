-- Whether a public site takes keyless events sent without an Origin (server-side
-- senders, as Plausible and Umami take them; ingest/admission.py, sites/lua/site_rules.lua);
-- off, as existing sites keep, until its owner opts in.
-- up
ALTER TABLE sites ADD COLUMN IF NOT EXISTS accept_server_events Bool DEFAULT false
-- down
ALTER TABLE sites DROP COLUMN IF EXISTS accept_server_events

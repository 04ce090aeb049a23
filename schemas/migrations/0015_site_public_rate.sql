-- A public site's own rate limit for keyless (browser) requests, set by its owner
-- (ingest/admission.py); 0, as existing sites keep, is the deployment's
-- HITSTREAM_RATE_LIMIT_KEY_PER_S.
-- up
ALTER TABLE sites ADD COLUMN IF NOT EXISTS public_rate_limit_per_s Float64 DEFAULT 0
-- down
ALTER TABLE sites DROP COLUMN IF EXISTS public_rate_limit_per_s

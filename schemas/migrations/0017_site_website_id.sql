-- Each site's `website_id`: the UUID Umami's clients name it by (POST /api/send,
-- ingest/umami.py). New sites get a random one; a site stored before this migration
-- reads a UUIDv5 of its site_id in the namespace {website_namespace}, the rule
-- schemas/sites.py's default_website_id owns (a test checks both agree), so every
-- process and the Redis cache name it alike until it is set.
-- up
ALTER TABLE sites ADD COLUMN IF NOT EXISTS website_id String DEFAULT UUIDNumToString(toFixedString(concat(substring(SHA1(concat(unhex('{website_namespace}'), site_id)), 1, 6), char(bitOr(bitAnd(reinterpretAsUInt8(substring(SHA1(concat(unhex('{website_namespace}'), site_id)), 7, 1)), 15), 80)), substring(SHA1(concat(unhex('{website_namespace}'), site_id)), 8, 1), char(bitOr(bitAnd(reinterpretAsUInt8(substring(SHA1(concat(unhex('{website_namespace}'), site_id)), 9, 1)), 63), 128)), substring(SHA1(concat(unhex('{website_namespace}'), site_id)), 10, 7)), 16))
-- down
ALTER TABLE sites DROP COLUMN IF EXISTS website_id

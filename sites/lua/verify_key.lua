-- Needs redis_clock.lua and key_rules.lua in front.
-- KEYS[1]: the keys hash; ARGV: key id, proof. The record if the key is valid, 1 if it
-- is only genuine (revoked or expired), else false.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if record and key_is_valid(record, ARGV[2], now_ms()) then return record end
if record and key_is_genuine(record, ARGV[2]) then return 1 end
return false

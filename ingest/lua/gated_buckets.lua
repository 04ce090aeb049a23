-- Needs redis_clock.lua, key_rules.lua and site_rules.lua (sites/lua) in front.
-- One round trip checks who the caller is and charges its buckets: a bucket of the
-- caller itself (its API key, its public site) is charged only once the caller is
-- verified (by the registry's rules, sites/lua), so a wrong secret or a disallowed
-- origin cannot drain a victim's bucket; a bucket of failed authentications is checked
-- on every attempt but charged only when the caller is not verified, so a legitimate
-- caller's successes cost nothing and an address over its failures is refused even
-- with the right secret (no oracle for a guesser);
-- every request, verified or not, is charged to its client IP.
--
-- One call checks the requests of a group commit (ingest/ratelimit.py), each in turn as
-- if alone: ARGV[1] is their number n, ARGV[2..2n+1] each one's count of keys and of
-- arguments, then their keys and arguments one after the other; the answer is a list of
-- each one's answer. For one request:
-- KEYS[1]: where the check looks (the registry's keys or sites hash, or the set of
-- allowed origins); KEYS[2..]: the buckets. ARGV[1]: the check ('' none, 'key', 'site',
-- 'origin', or 'given': verified by the caller, ARGV[2] '1' or '0'), ARGV[2]: the field
-- to look up, ARGV[3]: the proof (SHA-256 of the key's secret, or the request's Origin);
-- then per bucket: rate, burst, mode ('0' always charged, '1' charged only when
-- verified, '2' checked always, charged only on a failed authentication: a key whose
-- secret does not match, or 'given' '0'; a revoked or expired key's genuine secret is
-- no guess; '3' as '2', but checked only on a failed authentication: a right key is
-- never refused for others' guesses from its address, a shared NAT's). The request passes if
-- every checked bucket holds a token; then one is taken from each charged one (a bucket
-- nothing is taken from is not written: its level follows from its last state). Redis's
-- own clock is used, so every replica sees one time.
local function gated(KEYS, ARGV, now)
  local kind, field, proof = ARGV[1], ARGV[2], ARGV[3]
  local verified, record = 1, false
  local genuine = 1  -- 0: a failed authentication (a guess), charged to mode '2' buckets
  if kind == 'key' or kind == 'site' then
    record = redis.call('HGET', KEYS[1], field)
    verified = 0
    if record then
      local valid
      if kind == 'key' then valid = key_is_valid(record, proof, now)
      else valid = site_admits(record, proof) end
      if valid then verified = 1 end
    end
    if kind == 'key' then
      genuine = (record and key_is_genuine(record, proof)) and 1 or 0
    end
  elseif kind == 'origin' then
    verified = redis.call('SISMEMBER', KEYS[1], field)
  elseif kind == 'given' then
    verified = (field == '1') and 1 or 0
    genuine = verified
  end
  local allowed, retry_ms, remaining, limiting = 1, 0, -1, 1
  local checked, tokens, takes = {}, {}, {}
  for i = 2, #KEYS do
    local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
    local mode = ARGV[3 * i]
    if (mode ~= '1' or verified == 1) and (mode ~= '3' or genuine == 0) then
      local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
      local level = tonumber(state[1]) or burst
      local since = now - (tonumber(state[2]) or now)
      level = math.min(burst, level + since * rate / 1000)
      tokens[i] = level
      takes[i] = ((mode ~= '2' and mode ~= '3') or genuine == 0) and 1 or 0
      checked[#checked + 1] = i
      if level < 1 then
        allowed = 0
        local wait = math.ceil((1 - level) * 1000 / rate)
        if wait > retry_ms then retry_ms, limiting = wait, i - 1 end
      end
    end
  end
  for _, i in ipairs(checked) do
    local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
    local level = tokens[i] - allowed * takes[i]
    if allowed * takes[i] == 1 then
      redis.call('HSET', KEYS[i], 'tokens', tostring(level), 'ts', now)
      redis.call('PEXPIRE', KEYS[i], math.ceil(burst * 1000 / rate) + 1000)
    end
    if remaining < 0 or math.floor(level) < remaining then remaining = math.floor(level) end
  end
  return {verified, allowed, retry_ms, remaining, limiting, record, genuine}
end

local n = tonumber(ARGV[1])
local now = now_ms()
local out, k, a = {}, 1, 2 + 2 * n
for r = 1, n do
  local nk, na = tonumber(ARGV[2 * r]), tonumber(ARGV[2 * r + 1])
  local keys, args = {}, {}
  for i = 1, nk do keys[i] = KEYS[k + i - 1] end
  for i = 1, na do args[i] = ARGV[a + i - 1] end
  out[r] = gated(keys, args, now)
  k, a = k + nk, a + na
end
return out

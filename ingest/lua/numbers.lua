-- Each visitor's number, dense per site and salt day (the rule schemas/entry.py states,
-- NUMBER_DAY): a day's numbers are a hash under `prefix` .. site .. ':' .. day, visitor
-- -> rank, with the day's count under '#' (no visitor ID is '#'). A visitor met again
-- that day gets its number again; a new one the next rank. The hash expires with the
-- day's salt, at day * day_s + life (ingest/visitors.py salt_expiry, given as its two
-- terms): after that no event can carry a visitor ID of that salt.
--
-- numbers(prefix, day_s, life, per_day) returns number(site, visitor, day), 0 for a
-- visitor that is not numbered (visitor '0', or day '0').
local function numbers(prefix, day_s, life, per_day)
  local known = {}  -- this call's numbers: a visitor's events mostly come together
  local function number(site, visitor, day)
    if visitor == '0' or day == '0' then
      return 0
    end
    local key = prefix .. site .. ':' .. day
    local found = known[key .. ' ' .. visitor]
    if found then
      return found
    end
    local rank = redis.call('HGET', key, visitor)
    if not rank then
      rank = redis.call('HINCRBY', key, '#', 1)
      redis.call('HSET', key, visitor, rank)
      redis.call('EXPIREAT', key, tonumber(day) * day_s + life)
    end
    found = tonumber(day) * per_day + tonumber(rank)
    known[key .. ' ' .. visitor] = found
    return found
  end
  return number
end

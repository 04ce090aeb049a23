-- Each visitor's number, dense per site and salt day (the rule schemas/entry.py states:
-- day * per_day + the shard's base + rank): a day's numbers are a hash under
-- `prefix` .. site .. ':' .. day, visitor -> rank, with the day's count under '#' and its
-- cap under 'cap' (no visitor ID is either). A visitor met again that day gets its
-- number again; a new one the next rank, until the day's cap (HITSTREAM_VISITOR_NUMBERS,
-- fixed by the day's first number): visitors after it get none and are counted by
-- their IDs, as every event of theirs finds no number. The hash expires with the day's
-- salt, at day * day_s + life (ingest/visitors.py salt_expiry, given as its two terms):
-- after that no event can carry a visitor ID of that salt; a day whose expiry has passed
-- by Redis's clock (an ingest clock a day or more behind) is not numbered.
--
-- numbers(prefix, day_s, life, per_day, base, cap, now) returns number(site, visitor,
-- day) for an event with a visitor (append_once.lua asks only for those), 0 for one not
-- numbered (day '0').
local function numbers(prefix, day_s, life, per_day, base, cap, now)
  local known = {}  -- this call's numbers: a visitor's events mostly come together
  local function number(site, visitor, day)
    if day == '0' then
      return 0
    end
    local key = prefix .. site .. ':' .. day
    local memo = key .. ' ' .. visitor
    if known[memo] then
      return known[memo]
    end
    day = tonumber(day)
    local first = day * per_day + base  -- the day's numbers in this shard are first + rank
    local expiry = day * day_s + life
    local rank = redis.call('HGET', key, visitor)
    local found = 0
    if rank then
      found = first + tonumber(rank)
    elseif expiry > now then
      local counted = redis.call('HMGET', key, '#', 'cap')
      local day_cap = tonumber(counted[2] or cap)
      if tonumber(counted[1] or '0') < day_cap then
        rank = redis.call('HINCRBY', key, '#', 1)
        redis.call('HSET', key, visitor, rank, 'cap', day_cap)
        redis.call('EXPIREAT', key, expiry)
        found = first + rank
      end
    end
    known[memo] = found
    return found
  end
  return number
end

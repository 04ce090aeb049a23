-- Needs visits.lua and numbers.lua in front.
-- Atomically: for each (row, site, id, visitor, ms, day) group, append the row unless
-- `id` (a client's event_id, 16 bytes; '' for none) was already seen for that site within
-- the dedup window, with its visitor's number (numbers.lua; `day`: the salt's day, '0'
-- for a visitor not numbered) and its visit's id (visits.lua) written in. Appended
-- together with the row: a number or a visit is never given to an event that was not
-- stored, and a stored event always has both. Redis's clock decides the dedup slice, so
-- every ingest replica agrees.
--
-- Both are spliced into the row's tail: the row ends with `tail` (entry's TAIL, both 0),
-- replaced by `format` (TAIL_FORMAT) filled with the number and the visit's id.
--
-- KEYS[1]: the stream; KEYS[2]: this call's mark. ARGV[1]: the dedup sets' prefix,
-- ARGV[2]: the window (s), ARGV[3]: its slices, ARGV[4]: the visits' prefix, ARGV[5]: the
-- visit gap (ms), ARGV[6]: the call mark's life (s), ARGV[7..9]: the entry's row field,
-- client-id field and its mark, ARGV[10..11]: the row's tail and its format (ARGV[7..11]
-- and ARGV[15] from schemas/entry.py), ARGV[12]: the numbers' prefix, ARGV[13..14]: a
-- day's seconds and a salt's life after its day began, ARGV[15]: NUMBER_DAY, ARGV[16]:
-- the shard's base of numbers, ARGV[17]: visitors numbered per site and day; then the
-- groups. Returns how many rows were appended, or -1 for a call already run.
--
-- Redis keeps what a script wrote before an error: the one error a write here can meet
-- (a key of another type under the stream's name) is checked before any.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'stream' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a ' .. kind .. ', not a stream')
end
-- A call the client sends again after its connection broke (redis-py does; on a cluster
-- to the slot's new master, which has what the old one replicated) finds its mark and
-- appends nothing a second time.
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[6]) then
  return -1
end
local prefix, window, slices = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local row_field, client_field, client_mark = ARGV[7], ARGV[8], ARGV[9]
local now = tonumber(redis.call('TIME')[1])
local visit, save_visits = visits(ARGV[4], tonumber(ARGV[5]))
local number = numbers(
  ARGV[12], tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16]),
  tonumber(ARGV[17]), now
)
local cut, format = -#ARGV[10] - 1, ARGV[11]
-- The row with its visitor's number and visit's id; as encoded for an event without a
-- visitor.
local function stored(row, site, visitor, ms, day)
  if visitor == '0' then
    return row
  end
  local tail = string.format(format, number(site, visitor, day), visit(site, visitor, ms))
  return string.sub(row, 1, cut) .. tail
end
-- Client-chosen IDs are remembered per site in one set per slice of the window; an ID
-- is found in the current slice or any of the `slices` before it.
local width = math.ceil(window / slices)
local current = math.floor(now / width)
local added = 0
for i = 18, #ARGV, 6 do
  local site, id = ARGV[i + 1], ARGV[i + 2]
  if id == '' then
    local row = stored(ARGV[i], site, ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
    redis.call('XADD', KEYS[1], '*', row_field, row)
    added = added + 1
  else
    local seen = false
    for slice = current - slices, current do
      if redis.call('SISMEMBER', prefix .. site .. ':' .. slice, id) == 1 then
        seen = true
        break
      end
    end
    if not seen then
      -- Appended before it is remembered: a script that fails between the two (Redis
      -- keeps what a failed script wrote) may store a retry again, never lose it.
      local row = stored(ARGV[i], site, ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
      redis.call('XADD', KEYS[1], '*', row_field, row, client_field, client_mark)
      local key = prefix .. site .. ':' .. current
      redis.call('SADD', key, id)
      redis.call('EXPIREAT', key, (current + 1) * width + window)
      added = added + 1
    end
  end
end
save_visits()
return added

-- Needs visits.lua in front.
-- Atomically: for each (row, site, id, visitor, ms) group, append the row unless `id` (a
-- client's event_id, 16 bytes; '' for none) was already seen for that site within the
-- dedup window, with its visit's id written in (visits.lua). Appended together with the
-- row: a visit is never assigned to an event that was not stored, and a stored event
-- always has its visit. Redis's clock decides the dedup slice, so every ingest replica
-- agrees.
--
-- KEYS[1]: the stream; KEYS[2]: this call's mark. ARGV[1]: the dedup sets' prefix,
-- ARGV[2]: the window (s), ARGV[3]: its slices, ARGV[4]: the visits' prefix, ARGV[5]: the
-- visit gap (ms), ARGV[6]: the call mark's life (s), ARGV[7..9]: the entry's row field,
-- client-id field and its mark, ARGV[10..11]: the row's session tail and its format
-- (ARGV[7..11] from schemas/entry.py); then the groups. Returns how many rows were
-- appended, or -1 for a call already run.
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
local visit, save_visits = visits(ARGV[4], tonumber(ARGV[5]), ARGV[10], ARGV[11])
-- Client-chosen IDs are remembered per site in one set per slice of the window; an ID
-- is found in the current slice or any of the `slices` before it.
local width = math.ceil(window / slices)
local current = math.floor(tonumber(redis.call('TIME')[1]) / width)
local added = 0
for i = 12, #ARGV, 5 do
  local site, id = ARGV[i + 1], ARGV[i + 2]
  if id == '' then
    redis.call('XADD', KEYS[1], '*', row_field, visit(ARGV[i], site, ARGV[i + 3], ARGV[i + 4]))
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
      local row = visit(ARGV[i], site, ARGV[i + 3], ARGV[i + 4])
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

-- Each event's visit, told where the events of every ingest replica meet. A visitor's
-- current visit is "<id> <last ms>" under `prefix` .. site .. ':' .. visitor, its id the
-- time in ms of its first event (the rule schemas/entry.py states, VISIT_OPENED). An
-- event less than `gap` ms after the last one (or before the first) joins it, a later
-- one starts a new visit, a much older one (an import) gets a visit of its own and
-- leaves the current one alone. Events without a visitor get no visit: the caller
-- (append_once.lua) asks only for events with one.
--
-- visits(prefix, gap) returns visit(site, visitor, ms), the id of the event's visit,
-- and save(), which writes each visitor's visit once per call, however many events it
-- had.
local function visits(prefix, gap)
  local states = {}
  local function visit(site, visitor, ms)
    ms = tonumber(ms)
    local key = prefix .. site .. ':' .. visitor
    local state = states[key]
    if state == nil then
      local stored = redis.call('GET', key)
      if stored then
        local first, seen = string.match(stored, '^(%d+) (%d+)$')
        state = {tonumber(first), tonumber(seen)}
      else
        state = false
      end
    end
    local id = ms
    if state and ms < state[2] + gap and ms > state[1] - gap then
      id = state[1]
      state = {id, math.max(state[2], ms)}
    elseif state and ms < state[1] then
      return ms
    else
      state = {ms, ms}
    end
    states[key] = state
    return id
  end
  local function save()
    for key, state in pairs(states) do
      if state then
        redis.call('SET', key, string.format('%d %d', state[1], state[2]), 'PX', 2 * gap)
      end
    end
  end
  return visit, save
end

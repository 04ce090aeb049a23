-- KEYS[1]: the keys hash; ARGV[1]: sites/model.py's KEY_MERGE as JSON (field -> 'any' |
-- 'earliest'), then (key id, record) pairs. Each record is merged with the cached one
-- by that rule (ClickHouse's KEYS query merges rows by the same), then stored: 'any' is
-- true if either record has it (a revocation, a share token's read-only mark: for good,
-- even against a record cached before the field existed), 'earliest' the earlier time
-- either sets (none if neither does).
local rules = cjson.decode(ARGV[1])
local function set(value)
  if value == nil or value == cjson.null then return nil end
  return value
end
local function merged(how, old, new)
  if how == 'any' then return old == true or new == true end
  if how ~= 'earliest' then error('unknown merge rule: ' .. tostring(how)) end
  old, new = set(old), set(new)
  if old == nil then return new or cjson.null end
  if new == nil or old < new then return old end
  return new
end
for i = 2, #ARGV, 2 do
  local field, record = ARGV[i], ARGV[i + 1]
  local cached = redis.call('HGET', KEYS[1], field)
  if cached then
    local old, new = cjson.decode(cached), cjson.decode(record)
    for name, how in pairs(rules) do
      new[name] = merged(how, old[name], new[name])
    end
    record = cjson.encode(new)
  end
  redis.call('HSET', KEYS[1], field, record)
end
return (#ARGV - 1) / 2

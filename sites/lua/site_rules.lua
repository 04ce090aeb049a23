-- Whether a cached site record admits a browser: a public site, from one of its allowed
-- origins.
local function site_admits(record, origin)
  local r = cjson.decode(record)
  if not r.public then return false end
  for _, allowed in ipairs(r.allowed_origins) do
    if allowed == origin then return true end
  end
  return false
end

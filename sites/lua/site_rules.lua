-- Whether a cached site record admits a keyless sender: a public site, from one of its
-- allowed origins, or with no Origin (the empty origin: sites/model.py NO_ORIGIN, a
-- server) when the site accepts server events.
local function site_admits(record, origin)
  local r = cjson.decode(record)
  if not r.public then return false end
  if origin == '' then return r.accept_server_events == true end
  for _, allowed in ipairs(r.allowed_origins) do
    if allowed == origin then return true end
  end
  return false
end

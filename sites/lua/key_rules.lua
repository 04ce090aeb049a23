-- Whether a cached key record admits its caller (the record is sites/model.py's to_json
-- of an ApiKey). A key is genuine when its secret's hash matches `proof` (a revoked or
-- expired key's holder is no guesser), and valid when genuine and neither revoked nor
-- expired at `now` (epoch ms). ApiKey.active is the same rule in Python, for what the
-- admin routes show; tests/sites/test_cache_lua.py checks they agree.
local function key_is_genuine(record, proof)
  return cjson.decode(record).key_hash == proof
end
local function key_is_valid(record, proof, now)
  local r = cjson.decode(record)
  return key_is_genuine(record, proof) and not r.revoked
    and (r.expires_at == cjson.null or r.expires_at > now)
end

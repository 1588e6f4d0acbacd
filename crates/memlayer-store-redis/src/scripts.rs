//! Lua scripts: every write that must read-then-write runs as one script, so it is atomic.

/// Upserts a batch. KEYS: the item keys, then the namespace-count hash, then the
/// namespace-length hash (total analysed length of the namespace's items, for BM25).
/// ARGV[1] = now (ms); then per item: namespace, status, and for a new id its created_at,
/// access_count and last_accessed_at ('' for none); then n (number of field/value pairs) and
/// the n pairs.
/// All items are checked before any is written; returns per item
/// {version, created_at, updated_at, access_count, last_accessed_at or ""}, or an error
/// `STATUS <i> <old>`. Keys hold the namespace, so a stored row is always the same item's.
pub(crate) const UPSERT: &str = r#"
local now = tonumber(ARGV[1])
local nkeys = #KEYS - 2
local counts = KEYS[#KEYS - 1]
local lens = KEYS[#KEYS]
local pending = {}
local plan = {}
local pos = 2
for i = 1, nkeys do
  local key = KEYS[i]
  local ns, status, created = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2]
  local new_count, new_accessed = ARGV[pos + 3], ARGV[pos + 4]
  local n = tonumber(ARGV[pos + 5])
  local first = pos + 6
  pos = first + 2 * n
  local old = pending[key]
  if old == nil and redis.call('EXISTS', key) == 1 then
    local v = redis.call('HMGET', key, 'namespace', 'status', 'deleted', 'version', 'created_at', 'updated_at', 'access_count', 'last_accessed_at', 'doc_len')
    old = {ns = v[1], status = v[2], deleted = v[3], version = tonumber(v[4]), created = v[5], updated = tonumber(v[6]), count = v[7], accessed = v[8] or '', len = tonumber(v[9] or '0')}
  end
  local row
  if old == nil then
    row = {ns = ns, status = status, deleted = '0', version = 1, created = created, updated = math.max(now, tonumber(created)), count = new_count, accessed = new_accessed}
  else
    if old.deleted ~= '1' and not (old.status == status or old.status == 'draft' or (old.status == 'accepted' and status == 'discard')) then
      return redis.error_reply('STATUS ' .. i .. ' ' .. old.status)
    end
    row = {ns = ns, status = status, deleted = '0', version = old.version + 1, created = old.created, updated = math.max(now, old.updated + 1), count = old.count, accessed = old.accessed}
  end
  pending[key] = row
  plan[i] = {key = key, first = first, n = n, row = row, existed = (old ~= nil), old_len = (old and old.len) or 0}
end
local out = {}
local seen = {}
for i = 1, nkeys do
  local p = plan[i]
  local args = {}
  for j = 0, 2 * p.n - 1 do args[#args + 1] = ARGV[p.first + j] end
  local row = p.row
  local accessed = row.accessed or ''
  if not p.existed and not seen[p.key] then
    redis.call('HINCRBY', counts, row.ns, 1)
  end
  local new_len = 0
  for j = 1, #args, 2 do
    if args[j] == 'doc_len' then new_len = tonumber(args[j + 1]) end
  end
  local prior = 0
  if seen[p.key] then prior = seen[p.key] elseif p.existed then prior = p.old_len end
  redis.call('HINCRBY', lens, row.ns, new_len - prior)
  seen[p.key] = new_len
  redis.call('DEL', p.key)
  args[#args + 1] = 'version'; args[#args + 1] = tostring(row.version)
  args[#args + 1] = 'created_at'; args[#args + 1] = row.created
  args[#args + 1] = 'cat'; args[#args + 1] = row.created
  args[#args + 1] = 'updated_at'; args[#args + 1] = tostring(row.updated)
  args[#args + 1] = 'uat'; args[#args + 1] = tostring(row.updated)
  args[#args + 1] = 'access_count'; args[#args + 1] = row.count or '0'
  args[#args + 1] = 'cnt'; args[#args + 1] = row.count or '0'
  if accessed ~= '' then
    args[#args + 1] = 'last_accessed_at'; args[#args + 1] = accessed
    args[#args + 1] = 'acc'; args[#args + 1] = accessed
  else
    args[#args + 1] = 'acc'; args[#args + 1] = '-1e18'
  end
  redis.call('HSET', p.key, unpack(args))
  out[i] = {tostring(row.version), row.created, tostring(row.updated), row.count or '0', accessed}
end
return out
"#;

/// Hard-deletes KEYS[1] if it belongs to ARGV[1] (and, when ARGV[2] is not empty, only if it
/// expires at or before ARGV[2]). KEYS[2] and KEYS[3] are the namespace count and length
/// hashes. Returns 1 or 0.
pub(crate) const DELETE: &str = r#"
local v = redis.call('HMGET', KEYS[1], 'namespace', 'expires_at', 'doc_len')
if v[1] ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then
  if v[2] == false or v[2] == nil or tonumber(v[2]) > tonumber(ARGV[2]) then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HINCRBY', KEYS[3], ARGV[1], -tonumber(v[3] or '0'))
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return 1
"#;

/// Soft-deletes KEYS[1] if live in ARGV[1]; ARGV[2] = now. Returns 1 or 0.
pub(crate) const SOFT_DELETE: &str = r#"
local v = redis.call('HMGET', KEYS[1], 'namespace', 'deleted', 'updated_at')
if v[1] ~= ARGV[1] or v[2] ~= '0' then return 0 end
local updated = math.max(tonumber(ARGV[2]), tonumber(v[3]) + 1)
redis.call('HSET', KEYS[1], 'deleted', '1', 't_del', 'y', 'updated_at', tostring(updated), 'uat', tostring(updated))
return 1
"#;

/// Supersedes or restores KEYS[1] (live, in ARGV[1]). ARGV[2] = now; ARGV[3] = the replacing
/// id, or '' to restore; ARGV[4] = the replacing id's tag (or the none tag); when superseding,
/// KEYS[2] must be live in ARGV[1] too.
/// Returns 1, or 0 when KEYS[1] is not live, or -1 when KEYS[2] is not.
pub(crate) const SUPERSEDE: &str = r#"
local v = redis.call('HMGET', KEYS[1], 'namespace', 'deleted', 'updated_at')
if v[1] ~= ARGV[1] or v[2] ~= '0' then return 0 end
local updated = math.max(tonumber(ARGV[2]), tonumber(v[3]) + 1)
if ARGV[3] ~= '' then
  local b = redis.call('HMGET', KEYS[2], 'namespace', 'deleted')
  if b[1] ~= ARGV[1] or b[2] ~= '0' then return -1 end
  redis.call('HSET', KEYS[1], 'superseded_by', ARGV[3], 't_sup', 'y', 't_supby', ARGV[4], 'valid_to', ARGV[2], 'vto', ARGV[2], 'updated_at', tostring(updated), 'uat', tostring(updated))
else
  redis.call('HDEL', KEYS[1], 'superseded_by', 'valid_to')
  redis.call('HSET', KEYS[1], 't_sup', 'n', 't_supby', ARGV[4], 'vto', '1e18', 'updated_at', tostring(updated), 'uat', tostring(updated))
end
return 1
"#;

/// Reinforces KEYS[1] (live, in ARGV[1]) at ARGV[2]; ARGV[3] = the tier's TTL in ms or ''.
/// Returns 1 or 0.
pub(crate) const REINFORCE: &str = r#"
local v = redis.call('HMGET', KEYS[1], 'namespace', 'deleted', 'access_count', 'expires_at', 'created_at')
if v[1] ~= ARGV[1] or v[2] ~= '0' then return 0 end
local at = tonumber(ARGV[2])
local count = tonumber(v[3] or '0') + 1
redis.call('HSET', KEYS[1], 'access_count', tostring(count), 'cnt', tostring(count), 'last_accessed_at', ARGV[2], 'acc', ARGV[2])
if v[4] then
  local expires = tonumber(v[4])
  local ttl
  if ARGV[3] ~= '' then ttl = tonumber(ARGV[3]) else ttl = math.max(0, expires - tonumber(v[5])) end
  local slid = math.max(expires, at + ttl)
  redis.call('HSET', KEYS[1], 'expires_at', string.format('%d', slid), 'exp', string.format('%d', slid))
end
return 1
"#;

/// Moves items between namespaces, all or nothing. KEYS: per id its key in the source
/// namespace and its key in the target, then the namespace-count and namespace-length hashes.
/// ARGV[1] = from, ARGV[2] = to, ARGV[3] = the target's tag. Ids not live or soft-deleted in
/// the source are skipped. Returns how many moved, or the error `CONFLICT <i>` (nothing
/// moved) when the target already holds the i-th id.
pub(crate) const REASSIGN: &str = r#"
local n = (#KEYS - 2) / 2
local counts, lens = KEYS[#KEYS - 1], KEYS[#KEYS]
local present = {}
for i = 1, n do
  local src, dst = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('HGET', src, 'namespace') == ARGV[1] then
    if src ~= dst and redis.call('EXISTS', dst) == 1 then
      return redis.error_reply('CONFLICT ' .. i)
    end
    present[#present + 1] = i
  end
end
if ARGV[1] == ARGV[2] then return #present end
for _, i in ipairs(present) do
  local src, dst = KEYS[2 * i - 1], KEYS[2 * i]
  local len = tonumber(redis.call('HGET', src, 'doc_len') or '0')
  redis.call('RENAME', src, dst)
  redis.call('HSET', dst, 'namespace', ARGV[2], 't_ns', ARGV[3])
  redis.call('HINCRBY', lens, ARGV[1], -len)
  redis.call('HINCRBY', lens, ARGV[2], len)
  if redis.call('HINCRBY', counts, ARGV[1], -1) <= 0 then
    redis.call('HDEL', counts, ARGV[1])
    redis.call('HDEL', lens, ARGV[1])
  end
  redis.call('HINCRBY', counts, ARGV[2], 1)
end
return #present
"#;

/// Decays KEYS[1] if it lives in ARGV[1], is not deleted and is idle before ARGV[2] (last
/// access, or creation): scores above ARGV[4] are multiplied by ARGV[3], never below ARGV[4].
/// Returns 1 when a score changed, else 0.
pub(crate) const DECAY: &str = r#"
local v = redis.call('HMGET', KEYS[1], 'namespace', 'deleted', 'last_accessed_at', 'created_at', 'importance', 'confidence')
if v[1] ~= ARGV[1] or v[2] ~= '0' then return 0 end
local last = v[3]
if not last or last == '' then last = v[4] end
if tonumber(last) >= tonumber(ARGV[2]) then return 0 end
local f, floor = tonumber(ARGV[3]), tonumber(ARGV[4])
local function decayed(x)
  if x <= floor then return x end
  local y = x * f
  if y < floor then y = floor end
  return y
end
local i0, c0 = tonumber(v[5]), tonumber(v[6])
local i1, c1 = decayed(i0), decayed(c0)
if i1 == i0 and c1 == c0 then return 0 end
redis.call('HSET', KEYS[1], 'importance', string.format('%.9g', i1), 'imp', string.format('%.17g', i1), 'confidence', string.format('%.9g', c1))
return 1
"#;

/// Renames KEYS[1] to KEYS[2] unless KEYS[1] is gone or KEYS[2] exists. Returns 1 or 0.
pub(crate) const MOVE_KEY: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('RENAMENX', KEYS[1], KEYS[2]) end
return 0
"#;

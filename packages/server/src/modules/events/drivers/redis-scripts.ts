/**
 * The Redis driver's Lua scripts. Each runs atomically, which is what keeps
 * the order per key: a group's new entries are read (XREADGROUP) and sorted
 * into "dispatch now" and "wait behind the key's head" in one step, so two
 * members reading side by side cannot overtake each other on a key.
 *
 * Per group: `h` hash key → the id of the key's entry being worked on (its head),
 * `w` sorted set of waiting entries (`key \0 padded-id | id`, lexicographic = stream order),
 * `a` hash id → dispatches (the attempt number).
 * Every script returns dispatched entries as `{ id, topic, key, envelope, attempt }`.
 */

const COMMON = `
local function split(s) local t = {} for seg in string.gmatch(s, '[^.]+') do t[#t + 1] = seg end return t end
local function match1(p, t)
  for i = 1, #p do
    if p[i] == '*' and i == #p then return #t >= i end
    if t[i] == nil or (p[i] ~= '*' and p[i] ~= t[i]) then return false end
  end
  return #t == #p
end
local function matches(topic, first)
  local t = split(topic)
  for j = first, #ARGV do
    if match1(split(ARGV[j]), t) then return true end
  end
  return false
end
local function fields(f)
  local topic, key, env = '', '', ''
  for i = 1, #f, 2 do
    if f[i] == 't' then topic = f[i + 1] elseif f[i] == 'k' then key = f[i + 1] elseif f[i] == 'e' then env = f[i + 1] end
  end
  return topic, key, env
end
local function pad(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end
local function dispatch(out, id, topic, key, env)
  local n = redis.call('HINCRBY', KEYS[4], id, 1)
  out[#out + 1] = { id, topic, key, env, tostring(n) }
end
`;

/** KEYS: stream, h, w, a. ARGV: group, consumer, count, patterns… */
export const FETCH = `${COMMON}
local res = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
local out = {}
if not res then return out end
for _, e in ipairs(res[1][2]) do
  local id = e[1]
  local topic, key, env = fields(e[2])
  if not matches(topic, 4) then
    redis.call('XACK', KEYS[1], ARGV[1], id)
  elseif key == '' then
    dispatch(out, id, topic, key, env)
  elseif redis.call('HEXISTS', KEYS[2], key) == 1 then
    redis.call('ZADD', KEYS[3], 0, key .. '\\0' .. pad(id) .. '|' .. id)
  else
    redis.call('HSET', KEYS[2], key, id)
    dispatch(out, id, topic, key, env)
  end
end
return out
`;

/** Acks an entry; when it was its key's head, the key's next waiting entry is claimed and returned. KEYS: stream, h, w, a. ARGV: group, consumer, id, key. */
export const ACK = `${COMMON}
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
local out = {}
local key = ARGV[4]
if key == '' or redis.call('HGET', KEYS[2], key) ~= ARGV[3] then return out end
while true do
  local nxt = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. key .. '\\0', '[' .. key .. '\\0\\255', 'LIMIT', 0, 1)
  if #nxt == 0 then redis.call('HDEL', KEYS[2], key) return out end
  redis.call('ZREM', KEYS[3], nxt[1])
  local id = string.match(nxt[1], '|([^|]+)$')
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
  if #claimed > 0 and claimed[1] then
    redis.call('HSET', KEYS[2], key, id)
    local topic, _, env = fields(claimed[1][2])
    dispatch(out, id, topic, key, env)
    return out
  end
  -- trimmed by retention meanwhile: on to the next one
  redis.call('XACK', KEYS[1], ARGV[1], id)
end
`;

/** Takes over entries idle past the ack timeout (their member died or hangs), except those waiting behind their key's head. KEYS: stream, h, w, a. ARGV: group, consumer, min-idle ms, count. */
export const RECLAIM = `${COMMON}
local res = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local out = {}
for _, e in ipairs(res[2]) do
  if e and e[2] then
    local id = e[1]
    local topic, key, env = fields(e[2])
    if key == '' or redis.call('HGET', KEYS[2], key) == id then dispatch(out, id, topic, key, env) end
  end
end
return out
`;

/**
 * The Lua scripts of the Redis tier. Each operation that touches more than one key is one script, so
 * it costs one round trip and no other client sees it half done. They are sent as EVALSHA (loaded on
 * every (re)connect; EVAL when the server answers NOSCRIPT).
 *
 * Keys (P = keyPrefix):
 *   P r:<entry.key>   string: one variant's record (record-codec.ts), PX = its life in Redis
 *   P u:<url>         set: the entry keys stored for a URL (its variants); PX = the longest member's
 *   P t:<tag>         set: the entry keys carrying a tag; PX = the longest member's
 *   P l:<fill key>    string: a fill lock's token (request collapsing across instances)
 * An entry key is `url + "\n" + variant key`, so a member names its record and its URL.
 *
 * Members whose record has gone (expired, evicted) are pruned: from a URL's set when it is read, from a
 * tag's set by sampling two members on each write to it, and with the set when it expires. A key of
 * ours that holds the wrong type (garbage) is deleted where it is met.
 *
 * The scripts name keys they build from arguments (the records of a set's members), so they need a
 * single Redis or Valkey server (or a Sentinel-managed primary), not Redis Cluster.
 */
import { createHash } from 'node:crypto';

export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Makes a set's TTL at least `ttl` ms (a set just created has none). */
const EXTEND = `
local function extend(key, ttl)
  local cur = redis.call('PTTL', key)
  if cur == -1 or cur < ttl then redis.call('PEXPIRE', key, ttl) end
end
local function ensureSet(key)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'set' and t ~= 'none' then redis.call('DEL', key) end
end
`;

/**
 * KEYS[1] = URL set; ARGV[1] = record prefix.
 * Returns -1 when the URL set held the wrong type (deleted), else a flat array: member, record, ...
 * where a record is a string, or the integer 0 when the key held the wrong type (deleted). Members
 * without a record are pruned and left out.
 */
export const READ_VARIANTS = script(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return {} end
if t ~= 'set' then redis.call('DEL', KEYS[1]) return -1 end
local out = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local rk = ARGV[1] .. m
  local v = redis.pcall('GET', rk)
  if type(v) == 'table' and v['err'] then
    redis.call('DEL', rk)
    redis.call('SREM', KEYS[1], m)
    out[#out + 1] = m
    out[#out + 1] = 0
  elseif v == false then
    redis.call('SREM', KEYS[1], m)
  else
    out[#out + 1] = m
    out[#out + 1] = v
  end
end
return out
`);

/**
 * KEYS[1] = record, KEYS[2] = URL set, KEYS[3..] = tag sets;
 * ARGV[1] = record value, ARGV[2] = TTL (ms), ARGV[3] = member (entry key), ARGV[4] = record prefix.
 * The record is written first: when the server is full (OOM) nothing else is.
 */
export const STORE = script(`${EXTEND}
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
ensureSet(KEYS[2])
redis.call('SADD', KEYS[2], ARGV[3])
extend(KEYS[2], ttl)
for i = 3, #KEYS do
  ensureSet(KEYS[i])
  redis.call('SADD', KEYS[i], ARGV[3])
  extend(KEYS[i], ttl)
  for _, m in ipairs(redis.call('SRANDMEMBER', KEYS[i], 2)) do
    if redis.call('EXISTS', ARGV[4] .. m) == 0 then redis.call('SREM', KEYS[i], m) end
  end
end
return 1
`);

/** KEYS[1] = record, KEYS[2] = URL set; ARGV[1] = member. Returns 1 when the record existed. */
export const DELETE_VARIANT = script(`
local n = redis.call('DEL', KEYS[1])
if redis.call('TYPE', KEYS[2])['ok'] == 'set' then redis.call('SREM', KEYS[2], ARGV[1]) end
return n
`);

/** KEYS[1] = URL set; ARGV[1] = record prefix. Deletes every variant of the URL; returns how many records went. */
export const PURGE_URL = script(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return 0 end
local n = 0
if t == 'set' then
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do n = n + redis.call('DEL', ARGV[1] .. m) end
end
redis.call('DEL', KEYS[1])
return n
`);

/**
 * KEYS[1] = tag set; ARGV[1] = record prefix, ARGV[2] = URL set prefix, ARGV[3] = batch size.
 * Takes up to a batch of members off the tag, deletes their records and their URL-set memberships.
 * Returns { records deleted, members left in the tag }: the caller repeats while members are left,
 * so a huge tag never blocks the server in one long script.
 */
export const PURGE_TAG_BATCH = script(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return {0, 0} end
if t ~= 'set' then redis.call('DEL', KEYS[1]) return {0, 0} end
local n = 0
for _, m in ipairs(redis.call('SPOP', KEYS[1], tonumber(ARGV[3]))) do
  n = n + redis.call('DEL', ARGV[1] .. m)
  local nl = string.find(m, '\\n', 1, true)
  local url = nl and string.sub(m, 1, nl - 1) or m
  local uk = ARGV[2] .. url
  if redis.call('TYPE', uk)['ok'] == 'set' then redis.call('SREM', uk, m) end
end
return {n, redis.call('SCARD', KEYS[1])}
`);

/**
 * KEYS[1] = fill lock; ARGV[1] = the holder's token, ARGV[2] = fill channel, ARGV[3] = fill key.
 * Deletes the lock only when it still holds the token, then announces that the fill is over (to wake
 * followers even when the lock had expired meanwhile). Returns 1 when the lock was ours.
 */
export const RELEASE_FILL = script(`
local held = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  held = 1
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return held
`);

export const ALL_SCRIPTS: readonly Script[] = [READ_VARIANTS, STORE, DELETE_VARIANT, PURGE_URL, PURGE_TAG_BATCH, RELEASE_FILL];

/**
 * The Lua scripts of the Redis backend. Each touches exactly one key (KEYS[1]), so each runs on a
 * Redis Cluster too, on the node that owns that key's slot.
 */
import { createHash } from 'node:crypto'

/**
 * Compare-and-set. ARGV: hasExpected ('1' | '0'), expected, value, ttl ('' = none).
 * GET on a missing key is `false` in Lua, which never equals a string.
 */
const COMPARE_AND_SET = `
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
`

/** Delete only when the value is ARGV[1]: compareAndDelete, and a lock's release by its owner. */
const COMPARE_AND_DELETE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`

/** Push the expiry out only while ARGV[1] still owns the lock. */
const COMPARE_AND_EXPIRE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`

export interface Script { source: string, sha: string }

function script (source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

export const scripts = {
  compareAndSet: script(COMPARE_AND_SET),
  compareAndDelete: script(COMPARE_AND_DELETE),
  compareAndExpire: script(COMPARE_AND_EXPIRE)
}

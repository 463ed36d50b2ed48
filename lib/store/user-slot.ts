/**
 * Which user a store key belongs to, as a Redis Cluster hash tag: every key of one user must hash to
 * one slot, so that a single MGET can read a user's session and tokens together, and a user's keys
 * live and fail over together.
 *
 * The tag is base64url(utf8 userId): never `{` or `}` (which would end a hash tag early), whatever
 * characters an IMS user id holds. The key forms are the auth layer's (tokenKey, sessionKey, the
 * refresh lock's name); they are spelled out here so the Redis entry point does not pull in lib/auth.
 */

const TOKENS = 'tokens:'
const SESSION = 'session:'
const REFRESH_LOCK = 'lock:refresh:'
const BASE64URL = /^[A-Za-z0-9_-]+$/

/**
 * The user tag of a key, or undefined when the key belongs to no user:
 *   tokens:<userId>          → base64url(userId)
 *   session:<u>.<hash>       → <u>   (already base64url(userId); old `session:<hash>` records have no tag)
 *   lock:refresh:<userId>    → base64url(userId)
 */
export function userTagOf (key: string): string | undefined {
  if (key.startsWith(TOKENS)) return tagOfUser(key.slice(TOKENS.length))
  if (key.startsWith(REFRESH_LOCK)) return tagOfUser(key.slice(REFRESH_LOCK.length))
  if (key.startsWith(SESSION)) {
    const rest = key.slice(SESSION.length)
    const dot = rest.indexOf('.')
    if (dot === -1) return undefined
    const tag = rest.slice(0, dot)
    return BASE64URL.test(tag) ? tag : undefined
  }
  return undefined
}

/** An empty id would make an empty tag, which Redis ignores (it hashes the whole key): none, then. */
function tagOfUser (userId: string): string | undefined {
  return userId === '' ? undefined : Buffer.from(userId, 'utf8').toString('base64url')
}

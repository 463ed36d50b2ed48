/**
 * Where a record or a lock lives in Redis. Standalone: `<prefix><key>` and `<prefix>lock:<name>`,
 * exactly as before Cluster support (an upgrade signs nobody out). Cluster: a user's keys carry the
 * user's hash tag, `<prefix>{<tag>}<key>`, so they share one slot; keys of no user stay `<prefix><key>`.
 */
import { LightroomConfigError } from '../../errors.js'
import { LOCK_NAMESPACE } from '../backend-checks.js'
import { userTagOf } from '../user-slot.js'
import { escapeGlob } from './glob.js'

export interface KeyLayout {
  /** The Redis key of a record key (already checked by checkRecordKey). */
  record (key: string): string
  /** The Redis key of a lock. */
  lock (name: string): string
  /** SCAN MATCH pattern that finds every record under `keyPrefix` (and possibly more: filter with recordOf). */
  pattern (keyPrefix: string): string
  /** The record key a Redis key found by SCAN stands for; undefined for locks and keys this layout never writes. */
  recordOf (redisKey: string): string | undefined
}

export function standaloneLayout (prefix: string): KeyLayout {
  const lockPrefix = prefix + LOCK_NAMESPACE
  return {
    record: (key) => prefix + key,
    lock: (name) => lockPrefix + name,
    // MATCH is a glob: a `*`, `?`, `[` or `\` in either prefix must match itself only.
    pattern: (keyPrefix) => `${escapeGlob(prefix + keyPrefix)}*`,
    // Lock keys match a keyPrefix such as '' or 'lo'; they are never records.
    recordOf: (redisKey) => redisKey.startsWith(lockPrefix) ? undefined : redisKey.slice(prefix.length)
  }
}

export function clusterLayout (prefix: string): KeyLayout {
  // A brace in the prefix would become (or break, `{}`) the hash tag Redis uses, not ours.
  if (/[{}]/.test(prefix)) {
    throw new LightroomConfigError('prefix', 'must not contain "{" or "}" on a Redis Cluster: the backend places the hash tags itself')
  }
  const tagged = (key: string): string => {
    const tag = userTagOf(key)
    return tag === undefined ? prefix + key : `${prefix}{${tag}}${key}`
  }
  return {
    record (key) {
      // `{<tag>}tokens:u` stored untagged would be the very Redis key of `tokens:u`.
      if (key.startsWith('{')) throw new RangeError('redisBackend: on a Redis Cluster, keys starting with "{" are reserved for hash tags')
      return tagged(key)
    },
    lock: (name) => tagged(LOCK_NAMESPACE + name),
    // The tag sits between the prefix and the key, so SCAN can only narrow by the backend prefix.
    pattern: () => `${escapeGlob(prefix)}*`,
    recordOf (redisKey) {
      const rest = redisKey.slice(prefix.length)
      let key = rest
      if (rest.startsWith('{')) {
        const close = rest.indexOf('}')
        key = rest.slice(close + 1)
        if (close === -1 || userTagOf(key) !== rest.slice(1, close)) return undefined
      } else if (userTagOf(rest) !== undefined) {
        // A user's key without its tag: the standalone layout's, which get() here never reads.
        return undefined
      }
      return key.startsWith(LOCK_NAMESPACE) ? undefined : key
    }
  }
}

/**
 * The bounded local cache a networked backend answers getSync from: raw envelopes (ciphertext) as
 * this process last read them, each trusted for `localCacheMs`. Shared by the Redis and PostgreSQL
 * backends, so "how stale can a fast-path answer be" has one definition.
 */

/** Envelopes remembered; one per active session and user. */
const CAPACITY = 10_000

export interface RecentReads {
  /** Call before a read goes out; hand the result to remember() with what came back. */
  begin (): number
  /** Keeps what a read returned, unless a local write happened while it was in flight. */
  remember (key: string, value: string | undefined, begun: number): void
  /** Every local write or delete drops the key at once. */
  forget (key: string): void
  /** The envelope read less than localCacheMs ago, if any. */
  answer (key: string): string | undefined
}

export function recentReads (localCacheMs: number): RecentReads {
  const recent = new Map<string, { value: string, at: number }>()
  // Bumped by every local write: a read that was in flight across one must not put back what the
  // write replaced or deleted.
  let writes = 0
  return {
    begin: () => writes,
    remember (key, value, begun) {
      if (localCacheMs === 0 || writes !== begun) return
      if (value === undefined) {
        recent.delete(key)
        return
      }
      if (recent.size >= CAPACITY && !recent.has(key)) recent.delete(recent.keys().next().value as string)
      recent.set(key, { value, at: Date.now() })
    },
    forget (key) {
      writes++
      recent.delete(key)
    },
    answer (key) {
      const entry = recent.get(key)
      return entry !== undefined && Date.now() - entry.at < localCacheMs ? entry.value : undefined
    }
  }
}

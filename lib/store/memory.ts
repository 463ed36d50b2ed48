/**
 * In-process backend: the default for development and single-process apps.
 * Everything is synchronous underneath, so each method's check-then-write is
 * atomic as long as no `await` sits between them (none does).
 */
import { randomUUID } from 'node:crypto'
import type { BackendLock, StoreBackend } from './types.js'

export interface MemoryBackendOptions {
  /** Epoch-ms clock; tests pass a fake one to expire records without waiting. */
  now?: () => number
}

/**
 * One record: just the string and a number, so RSS per stored user stays
 * close to the record's own size. Never-expiring records use Infinity, which
 * keeps the expiry test a single comparison.
 */
interface Entry {
  value: string
  expiresAt: number
}

/**
 * Expired entries examined per write. Memory only grows through writes, and
 * each write can add at most one entry while reclaiming up to this many, so
 * expired records cannot pile up, with no timer to unref or close.
 */
const SWEEP_PER_WRITE = 4

export function memoryBackend (options: MemoryBackendOptions = {}): StoreBackend & { readonly size: number } {
  const now = options.now ?? Date.now
  if (typeof now !== 'function') throw new TypeError('memoryBackend: options.now must be a function')

  const records = new Map<string, Entry>()
  const locks = new Map<string, Entry>()
  const sweepRecords = incrementalSweeper(records, now)
  const sweepLocks = incrementalSweeper(locks, now)

  function afterWrite (): void {
    sweepRecords(SWEEP_PER_WRITE)
    sweepLocks(SWEEP_PER_WRITE)
  }

  /** The live entry, dropping an expired one on the way (lazy expiry). */
  function live (map: Map<string, Entry>, key: string): Entry | undefined {
    const entry = map.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now()) {
      map.delete(key)
      return undefined
    }
    return entry
  }

  function write (key: string, value: string, ttlMs: number | undefined): void {
    records.set(key, { value, expiresAt: expiryFor(now, ttlMs) })
  }

  function makeLock (name: string, owner: string): BackendLock {
    return {
      owner,
      async extend (ttlMs) {
        checkTtl(ttlMs)
        // Ownership is checked on the live entry: once the lock has expired it
        // was lost, even if nobody has taken it since.
        const held = live(locks, name)
        if (held === undefined || held.value !== owner) return false
        held.expiresAt = now() + ttlMs
        return true
      },
      async release () {
        // Compare owners so that a holder whose lock expired and was taken by
        // someone else cannot release the new holder's lock.
        const held = locks.get(name)
        if (held !== undefined && held.value === owner) locks.delete(name)
        afterWrite()
      }
    }
  }

  return {
    async get (key) {
      return live(records, key)?.value
    },

    getSync (key) {
      return live(records, key)?.value
    },

    async getMany (keys) {
      return keys.map((key) => live(records, key)?.value)
    },

    async set (key, value, ttlMs) {
      checkTtl(ttlMs)
      write(key, value, ttlMs)
      afterWrite()
    },

    async compareAndSet (key, expected, value, ttlMs) {
      checkTtl(ttlMs)
      if (live(records, key)?.value !== expected) return false
      write(key, value, ttlMs)
      afterWrite()
      return true
    },

    async delete (key) {
      records.delete(key)
      afterWrite()
    },

    async compareAndDelete (key, expected) {
      const current = live(records, key)
      if (current === undefined || current.value !== expected) return false
      records.delete(key)
      afterWrite()
      return true
    },

    async tryLock (name, ttlMs) {
      checkTtl(ttlMs)
      if (live(locks, name) !== undefined) return undefined
      const owner = randomUUID()
      locks.set(name, { value: owner, expiresAt: now() + ttlMs })
      afterWrite()
      return makeLock(name, owner)
    },

    async * scan (prefix) {
      // A snapshot, so a caller that writes while iterating (reencryptAll
      // does) never sees a key twice or loops forever.
      const keys: string[] = []
      for (const key of records.keys()) {
        if (key.startsWith(prefix)) keys.push(key)
      }
      for (const key of keys) {
        if (live(records, key) !== undefined) yield key
      }
    },

    /** Live records. O(n): it purges every expired one first; meant for tests and metrics. */
    get size () {
      const t = now()
      for (const [key, entry] of records) {
        if (entry.expiresAt <= t) records.delete(key)
      }
      return records.size
    }
  }
}

/**
 * Returns a function that examines the next `budget` entries of the map,
 * round-robin, deleting expired ones. Map iterators stay valid across inserts
 * and deletes, so the cursor just carries on where the last write left it.
 */
function incrementalSweeper (map: Map<string, Entry>, now: () => number): (budget: number) => void {
  let cursor = map.entries()
  return function sweep (budget) {
    if (map.size === 0) return
    const t = now()
    for (let i = 0; i < budget; i++) {
      let next = cursor.next()
      if (next.done === true) {
        cursor = map.entries()
        next = cursor.next()
        if (next.done === true) return
      }
      const [key, entry] = next.value
      if (entry.expiresAt <= t) map.delete(key)
    }
  }
}

function expiryFor (now: () => number, ttlMs: number | undefined): number {
  return ttlMs === undefined ? Infinity : now() + ttlMs
}

/** Same rule as Redis (PX must be a positive integer-ish): a zero or negative TTL is a caller bug, not "forever". */
function checkTtl (ttlMs: number | undefined): void {
  if (ttlMs === undefined) return
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError('memoryBackend: ttlMs must be a positive finite number of milliseconds')
  }
}

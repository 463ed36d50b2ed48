/**
 * For the batch-job tests: many users signed in at once (login_hint picks each one at the mock IMS,
 * so sign-ins can run side by side), and a backend that lets a test watch the refresh locks and
 * make the store fail mid-run.
 */
import { memoryBackend, type BackendLock, type StoreBackend } from '../../index.js'
import { APP_ORIGIN, type Harness } from './setup.js'

export const userIds = (count: number, tag = 'U'): string[] =>
  Array.from({ length: count }, (_, i) => `${tag}${String(i).padStart(6, '0')}@AdobeID`)

/** Signs each user in through the real routes, `parallel` at a time. */
export async function signInAll (h: Harness, subs: readonly string[], parallel = 8): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < subs.length) {
      const sub = subs[next++]!
      const page = await h.browser().follow(`/auth/lightroom/login?login_hint=${encodeURIComponent(sub)}`, {
        stopAt: (location) => location.origin === APP_ORIGIN && !location.pathname.startsWith('/auth/')
      })
      if (page.status !== 303) throw new Error(`sign-in of ${sub} answered ${page.status}`)
    }
  }))
}

export interface WatchedBackend extends StoreBackend {
  /** Refresh locks held right now, the most held at once, and when each was taken (performance.now()). */
  readonly locks: { held: number, maxHeld: number, takenAt: number[] }
  /** While set, reading a token record fails as a store that is down does. */
  failTokenReads: boolean
}

export function watchedBackend (inner: StoreBackend = memoryBackend()): WatchedBackend {
  const locks = { held: 0, maxHeld: 0, takenAt: [] as number[] }
  const backend: WatchedBackend = {
    locks,
    failTokenReads: false,
    get: async (key) => {
      if (backend.failTokenReads && key.startsWith('tokens:')) throw new Error('connect ECONNREFUSED (test: the store is down)')
      return await inner.get(key)
    },
    set: async (key, value, ttlMs) => { await inner.set(key, value, ttlMs) },
    compareAndSet: async (key, expected, value, ttlMs) => await inner.compareAndSet(key, expected, value, ttlMs),
    delete: async (key) => { await inner.delete(key) },
    compareAndDelete: async (key, expected) => await inner.compareAndDelete(key, expected),
    scan: (prefix) => inner.scan(prefix),
    tryLock: async (name, ttlMs) => {
      const lock = await inner.tryLock(name, ttlMs)
      if (lock === undefined || !name.startsWith('refresh:')) return lock
      locks.held++
      locks.maxHeld = Math.max(locks.maxHeld, locks.held)
      locks.takenAt.push(performance.now())
      let released = false
      const watched: BackendLock = {
        owner: lock.owner,
        extend: async (ms) => await lock.extend(ms),
        release: async () => {
          if (!released) locks.held--
          released = true
          await lock.release()
        }
      }
      return watched
    }
  }
  return backend
}

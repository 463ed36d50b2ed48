/**
 * Refreshed token sets the store could not take. IMS has already rotated the grant when one is
 * kept here: these tokens are now the only ones that work, and dropping them would sign the user
 * out at the next refresh. So each is handed to this process's readers and written as soon as the
 * store takes it, retried every `retryMs` until written, or until the record holds a newer grant.
 * pendingWrite() resolves then: the refresh that kept it holds the user's lock until it does.
 */
import type { FastifyBaseLogger } from 'fastify'
import { StoreRecordError, storeUnavailable } from '../errors.js'
import type { StoredValue, TokenStore } from '../store/types.js'
import { recordTtlMs } from './refresh-policy.js'
import { tokenKey } from './token-key.js'
import { isTokenSet, type TokenSet } from './token-set.js'

interface Unsaved {
  /** The revision the set replaces: the record as it was when the refresh began (marked). */
  base: string
  set: TokenSet
  /** The refresh token IMS rotated away: a record still holding it is ours to replace. */
  spentRefreshToken: string | undefined
  settled: Promise<void>
  settle: () => void
  timer: NodeJS.Timeout | undefined
}

/** Compare-and-set tries per write of an unsaved set before waiting for the next retry. */
const WRITE_ATTEMPTS = 4

export class UnsavedSets {
  readonly #entries = new Map<string, Unsaved>()
  readonly #store: TokenStore
  readonly #now: () => number
  readonly #retryMs: number
  readonly #log: FastifyBaseLogger

  constructor (store: TokenStore, now: () => number, retryMs: number, log: FastifyBaseLogger) {
    this.#store = store
    this.#now = now
    this.#retryMs = retryMs
    this.#log = log
  }

  has (userId: string): boolean {
    return this.#entries.has(userId)
  }

  /** The unsaved set as a stored value, for readers while its write is still to happen. */
  stored (userId: string): StoredValue<TokenSet> | undefined {
    const entry = this.#entries.get(userId)
    return entry === undefined ? undefined : { value: entry.set, revision: entry.base, staleKey: false }
  }

  keep (userId: string, base: string, set: TokenSet, spentRefreshToken: string | undefined): void {
    this.drop(userId)
    let settle!: () => void
    const settled = new Promise<void>((resolve) => { settle = resolve })
    const entry: Unsaved = { base, set, spentRefreshToken, settled, settle, timer: undefined }
    this.#entries.set(userId, entry)
    const retry = (): void => {
      entry.timer = setTimeout(() => {
        if (this.#entries.get(userId) !== entry) return
        this.#write(userId, entry).catch(retry)
      }, this.#retryMs)
      entry.timer.unref()
    }
    retry()
  }

  pendingWrite (userId: string): Promise<void> | undefined {
    return this.#entries.get(userId)?.settled
  }

  /** Tries the user's unsaved set now. Store errors pass through (as 503), and it stays for the next try. */
  async flush (userId: string): Promise<void> {
    const entry = this.#entries.get(userId)
    if (entry !== undefined) await this.#write(userId, entry)
  }

  /** Forgets the user's unsaved set: superseded (a newer refresh wrote, the user signed out). */
  drop (userId: string): void {
    const entry = this.#entries.get(userId)
    if (entry !== undefined) this.#settle(userId, entry)
  }

  /** The app is closing: one last try for each unsaved set, then no more retries (what is left is lost with the process). */
  async close (): Promise<void> {
    await Promise.all([...this.#entries].map(async ([userId, entry]) => {
      await this.#write(userId, entry).catch(() => {
        this.#log.error({ userId }, 'lightroom-ims: closing with refreshed tokens the store never took; the user will have to sign in again')
      })
      this.#settle(userId, entry)
    }))
  }

  #settle (userId: string, entry: Unsaved): void {
    clearTimeout(entry.timer)
    if (this.#entries.get(userId) === entry) this.#entries.delete(userId)
    entry.settle()
  }

  /**
   * Writes an unsaved set. A record that changed meanwhile but still holds the grant IMS rotated away
   * (re-encrypted, or marked by an instance that took over the lock), or that cannot be read here, is
   * replaced all the same: ours is the only set that works. Any other change (a new sign-in, a
   * sign-out) wins, and ours is dropped.
   */
  async #write (userId: string, entry: Unsaved): Promise<void> {
    const key = tokenKey(userId)
    try {
      for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
        if (await this.#store.compareAndSet(key, entry.base, entry.set, recordTtlMs(entry.set, this.#now()))) break
        let latest: StoredValue<unknown> | undefined
        try {
          latest = await this.#store.get<unknown>(key)
        } catch (error) {
          if (!(error instanceof StoreRecordError) || error.revision === undefined) throw error
          latest = { value: undefined, revision: error.revision, staleKey: false }
        }
        if (latest === undefined) break
        const holdsSpent = entry.spentRefreshToken !== undefined && isTokenSet(latest.value) && latest.value.refreshToken === entry.spentRefreshToken
        if (!holdsSpent && latest.value !== undefined) break
        entry.base = latest.revision
        if (attempt === WRITE_ATTEMPTS - 1) return
      }
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    this.#settle(userId, entry)
  }
}

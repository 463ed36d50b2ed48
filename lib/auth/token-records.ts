/**
 * The users' token records in the store, under `tokens:<userId>`: reading them with their shape
 * checked (a corrupt record becomes a signed-out one), and every kind of write the token manager
 * makes. Decides nothing about refreshing; that is the manager's job.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { StoreRecordError, storeUnavailable } from '../errors.js'
import type { StoredRead, StoredValue, TokenStore } from '../store/types.js'
import { recordTtlMs } from './refresh-policy.js'
import { mergeSignIn, type SignInOutcome } from './sign-ins.js'
import { isTokenSet, type SignInEntry, type TokenSet } from './token-set.js'

export const TOKEN_PREFIX = 'tokens:'

export function tokenKey (userId: string): string {
  return `${TOKEN_PREFIX}${userId}`
}

export type ForgetReason = 'invalid_grant' | 'corrupt_record'

export interface TokenRecordsOptions {
  store: TokenStore
  log: FastifyBaseLogger
  now: () => number
  /** How long a session lives: sign-ins older than this are dropped from the record. */
  sessionMaxAgeMs: number
  /** Live sign-ins (sessions) kept per user; the oldest beyond it are evicted. */
  maxSessionsPerUser: number
  /** Told when a record is removed for the given reason (with the set, when it was readable). */
  onForget: (userId: string, reason: ForgetReason, set: TokenSet | undefined) => void
}

export class TokenRecords {
  readonly #o: TokenRecordsOptions
  /** Refreshed sets the store could not take (it was down): written back at the next read. */
  readonly #unsaved = new Map<string, { base: string, set: TokenSet }>()
  /** Values already known to be this user's well-formed token set (see read()). */
  readonly #checked = new WeakMap<object, string>()

  constructor (options: TokenRecordsOptions) {
    this.#o = options
  }

  /** Reads a user's token set; an unreadable record is logged (without content) and treated as absent. */
  async read (userId: string): Promise<StoredValue<TokenSet> | undefined> {
    const pending = this.#unsaved.get(userId)
    if (pending !== undefined) await this.#flushUnsaved(userId, pending)
    let outcome: StoredRead<unknown>
    try {
      outcome = { readable: true, stored: await this.#o.store.get<unknown>(tokenKey(userId)) }
    } catch (error) {
      if (!(error instanceof StoreRecordError)) throw storeUnavailable(undefined, error)
      outcome = { readable: false, error }
    }
    return await this.#verify(userId, outcome)
  }

  /**
   * read() for a record the caller has already fetched (with the session, in one round trip): the
   * same checks, the same handling of a corrupt record. A refreshed set still waiting to be written
   * is newer than what was fetched: it is written first and the record read again.
   */
  async accept (userId: string, outcome: StoredRead<unknown>): Promise<StoredValue<TokenSet> | undefined> {
    if (this.#unsaved.has(userId)) return await this.read(userId)
    return await this.#verify(userId, outcome)
  }

  async #verify (userId: string, outcome: StoredRead<unknown>): Promise<StoredValue<TokenSet> | undefined> {
    if (!outcome.readable) {
      this.#o.log.warn({ userId, reason: outcome.error.reason }, 'lightroom-ims: stored token record is unreadable; the user must sign in again')
      // A key id we do not hold may be one a newer instance already has (a rolling key rotation):
      // that record is left alone for it. Anything else is beyond repair.
      if (outcome.error.reason !== 'unknown-key') await this.forget(userId, 'corrupt_record')
      return undefined
    }
    const stored = outcome.stored
    if (stored === undefined) return undefined
    // The store hands out the same frozen value while a record is unchanged: check its shape once.
    if (this.#checked.get(stored.value as object) === userId) return stored as StoredValue<TokenSet>
    if (!isTokenSet(stored.value) || stored.value.userId !== userId) {
      this.#o.log.warn({ userId, reason: 'shape' }, 'lightroom-ims: stored token record has an unexpected shape; the user must sign in again')
      await this.forget(userId, 'corrupt_record', stored.revision)
      return undefined
    }
    if (Object.isFrozen(stored.value)) this.#checked.set(stored.value, userId)
    return stored as StoredValue<TokenSet>
  }

  /** The user's set when a synchronous backend has it unchanged and already checked; else undefined. */
  peek (userId: string): TokenSet | undefined {
    if (this.#unsaved.has(userId)) return undefined
    const value = this.#o.store.peek<TokenSet>(tokenKey(userId))?.value
    return value !== undefined && this.#checked.get(value) === userId ? value : undefined
  }

  /**
   * Stores a sign-in's set, replacing the user's tokens but keeping the other sign-ins still live
   * (other devices), capped: the oldest beyond `maxSessionsPerUser` are evicted. The grant replaced
   * is kept to be revoked at sign-out. A compare-and-set, so two sign-ins at once both stay listed.
   * An unreadable record keeps nothing: every other session ends (fail safe), and that is logged.
   */
  async writeSignIn (set: TokenSet, entry: SignInEntry): Promise<SignInOutcome> {
    const key = tokenKey(set.userId)
    try {
      for (let attempt = 0; ; attempt++) {
        let before: StoredValue<unknown> | undefined
        let unreadable = false
        try {
          before = await this.#o.store.get<unknown>(key)
        } catch (error) {
          if (!(error instanceof StoreRecordError)) throw error
          unreadable = true
          this.#o.log.warn({ userId: set.userId, reason: error.reason }, 'lightroom-ims: stored token record is unreadable at sign-in; the user\'s other sessions end')
        }
        const prior = before !== undefined && isTokenSet(before.value) && before.value.userId === set.userId ? before.value : undefined
        const { next, outcome } = mergeSignIn(prior, set, entry, this.#o.now(), this.#o.sessionMaxAgeMs, this.#o.maxSessionsPerUser)
        const ttl = recordTtlMs(next, this.#o.now())
        if (unreadable || attempt >= 3) {
          await this.#o.store.set(key, next, ttl)
          return outcome
        }
        if (await this.#o.store.compareAndSet(key, before?.revision, next, ttl)) return outcome
      }
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
  }

  /**
   * Removes the user's record, but only the version read (`revision`): a sign-in that lands
   * meanwhile is not silently dropped. Resolves whether it removed it.
   */
  async remove (userId: string, revision: string): Promise<boolean> {
    this.#unsaved.delete(userId)
    try {
      return await this.#o.store.compareAndDelete(tokenKey(userId), revision)
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
  }

  /** Deletes session records (best effort: a record left behind is no longer listed, so it is dead). */
  async deleteSessions (keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map(async (key) => {
      await this.#o.store.delete(key).catch(() => {
        this.#o.log.warn('lightroom-ims: could not delete a session record; it is no longer valid anyway')
      })
    }))
  }

  /** Signs the user out for a reason of ours; with `revision`, only if the record is still that one. */
  async forget (userId: string, reason: ForgetReason, revision?: string, set?: TokenSet): Promise<void> {
    try {
      if (revision === undefined) await this.#o.store.delete(tokenKey(userId))
      else await this.#o.store.compareAndDelete(tokenKey(userId), revision)
      if (set?.signIns !== undefined) await this.deleteSessions(set.signIns.map((signIn) => signIn.sessionKey))
    } catch (error) {
      this.#o.log.warn({ userId, err: { message: (error as Error).message } }, 'lightroom-ims: could not delete a token record')
    }
    this.#o.onForget(userId, reason, set)
  }

  /** A few quick tries: a store blip should not cost a rotated grant. Runs under the refresh lock. */
  async writeRefreshed (userId: string, revision: string, next: TokenSet): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#o.store.compareAndSet(tokenKey(userId), revision, next, recordTtlMs(next, this.#o.now()))
      } catch (error) {
        if (attempt >= 2) throw error
        await sleep(50 * 4 ** attempt)
      }
    }
  }

  /**
   * IMS has already rotated the grant: these tokens are now the only ones that work, and dropping
   * them would sign the user out at the next refresh. Kept in this process, written at the next read.
   */
  keepUnsaved (userId: string, base: string, set: TokenSet): void {
    this.#unsaved.set(userId, { base, set })
  }

  /** Writes a refreshed set the store could not take at the time; whatever happens, it is tried once. */
  async #flushUnsaved (userId: string, pending: { base: string, set: TokenSet }): Promise<void> {
    try {
      await this.#o.store.compareAndSet(tokenKey(userId), pending.base, pending.set, recordTtlMs(pending.set, this.#o.now()))
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    // Written, or the record changed meanwhile (a new sign-in wins): either way it is settled.
    this.#unsaved.delete(userId)
  }
}

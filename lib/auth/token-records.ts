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
import { readRecord } from './read-record.js'
import { tokenKey } from './token-key.js'
import { UnsavedSets } from './unsaved-sets.js'
import { isTokenSet, type RefreshIntent, type SignInEntry, type TokenSet } from './token-set.js'

export { TOKEN_PREFIX, tokenKey } from './token-key.js'

export type ForgetReason = 'invalid_grant' | 'corrupt_record'

/** A sign-in that keeps losing its compare-and-set to other writes gives up after this many. */
const SIGN_IN_WRITE_ATTEMPTS = 8

/** read(): the record judged unreadable was replaced while being removed; read it again. */
const REPLACED = Symbol('replaced')

export interface TokenRecordsOptions {
  store: TokenStore
  log: FastifyBaseLogger
  now: () => number
  /** How long a session lives: sign-ins older than this are dropped from the record. */
  sessionMaxAgeMs: number
  /** Live sign-ins (sessions) kept per user; the oldest beyond it are evicted. */
  maxSessionsPerUser: number
  /** How often a refreshed set the store could not take is tried again. */
  unsavedRetryMs: number
  /** Told when a record is removed for the given reason (with the set, when it was readable). */
  onForget: (userId: string, reason: ForgetReason, set: TokenSet | undefined) => void
}

export class TokenRecords {
  readonly #o: TokenRecordsOptions
  /** Refreshed sets the store could not take (it was down): retried until written, and at every read. */
  readonly #unsaved: UnsavedSets
  /** Values already known to be this user's well-formed token set (see read()). */
  readonly #checked = new WeakMap<object, string>()

  constructor (options: TokenRecordsOptions) {
    this.#o = options
    this.#unsaved = new UnsavedSets(options.store, options.now, options.unsavedRetryMs, options.log)
  }

  /** Reads a user's token set; an unreadable record is logged (without content) and treated as absent. */
  async read (userId: string): Promise<StoredValue<TokenSet> | undefined> {
    if (this.#unsaved.has(userId)) {
      // Its retries go on if the store is still away; meanwhile it is the only set that works.
      await this.#unsaved.flush(userId).catch(() => {})
      // Written, or superseded: read what is stored now. Still pending: ours is the only live set.
      const pending = this.#unsaved.stored(userId)
      if (pending !== undefined) return pending
    }
    // A second pass only when a record judged unreadable was replaced while it was being removed.
    for (let pass = 0; ; pass++) {
      const verified = await this.#verify(userId, await readRecord(this.#o.store, tokenKey(userId)))
      if (verified !== REPLACED) return verified
      if (pass > 0) return undefined
    }
  }

  /**
   * read() for a record the caller has already fetched (with the session, in one round trip): the
   * same checks, the same handling of a corrupt record. A refreshed set still waiting to be written
   * is newer than what was fetched: it is written first and the record read again.
   */
  async accept (userId: string, outcome: StoredRead<unknown>): Promise<StoredValue<TokenSet> | undefined> {
    if (this.#unsaved.has(userId)) return await this.read(userId)
    const verified = await this.#verify(userId, outcome)
    return verified === REPLACED ? await this.read(userId) : verified
  }

  async #verify (userId: string, outcome: StoredRead<unknown>): Promise<StoredValue<TokenSet> | undefined | typeof REPLACED> {
    if (!outcome.readable) {
      const { reason, revision } = outcome.error
      this.#o.log.warn({ userId, reason }, 'lightroom-ims: stored token record is unreadable; the user must sign in again')
      // A key id we do not hold may be one a newer instance already has (a rolling key rotation):
      // that record is left alone for it. Anything else is beyond repair, but only that very
      // envelope is removed: a valid record another instance wrote a moment ago stays.
      if (reason === 'unknown-key' || revision === undefined) return undefined
      return await this.forget(userId, 'corrupt_record', revision) ? undefined : REPLACED
    }
    const stored = outcome.stored
    if (stored === undefined) return undefined
    // The store hands out the same frozen value while a record is unchanged: check its shape once.
    if (this.#checked.get(stored.value as object) === userId) return stored as StoredValue<TokenSet>
    if (!isTokenSet(stored.value) || stored.value.userId !== userId) {
      this.#o.log.warn({ userId, reason: 'shape' }, 'lightroom-ims: stored token record has an unexpected shape; the user must sign in again')
      return await this.forget(userId, 'corrupt_record', stored.revision) ? undefined : REPLACED
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
      // Always a compare-and-set, even over an unreadable record: a plain write could bring back a
      // user a concurrent sign-out has just removed, or drop a sign-in landing at the same moment.
      for (let attempt = 0; attempt < SIGN_IN_WRITE_ATTEMPTS; attempt++) {
        let before: StoredValue<unknown> | undefined
        let revision: string | undefined
        try {
          before = await this.#o.store.get<unknown>(key)
          revision = before?.revision
        } catch (error) {
          if (!(error instanceof StoreRecordError)) throw error
          revision = error.revision
          this.#o.log.warn({ userId: set.userId, reason: error.reason }, 'lightroom-ims: stored token record is unreadable at sign-in; the user\'s other sessions end')
        }
        const prior = before !== undefined && isTokenSet(before.value) && before.value.userId === set.userId ? before.value : undefined
        const { next, outcome } = mergeSignIn(prior, set, entry, this.#o.now(), this.#o.sessionMaxAgeMs, this.#o.maxSessionsPerUser)
        if (await this.#o.store.compareAndSet(key, revision, next, recordTtlMs(next, this.#o.now()))) return outcome
      }
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    // Every try lost to another write of the same record: the sign-in is not stored, and says so.
    throw storeUnavailable('The sign-in could not be stored: the user\'s record kept changing; try again')
  }

  /**
   * Removes the user's record, but only the version read (`revision`): a sign-in that lands
   * meanwhile is not silently dropped. Resolves whether it removed it.
   */
  async remove (userId: string, revision: string): Promise<boolean> {
    this.#unsaved.drop(userId)
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

  /**
   * Signs the user out for a reason of ours, but only while the record is still the one judged
   * (`revision`). Resolves false when someone wrote it meanwhile (a new sign-in, a peer's refresh):
   * the record is theirs then, and read again.
   */
  async forget (userId: string, reason: ForgetReason, revision: string, set?: TokenSet): Promise<boolean> {
    try {
      if (!await this.#o.store.compareAndDelete(tokenKey(userId), revision)) return false
      if (set?.signIns !== undefined) await this.deleteSessions(set.signIns.map((signIn) => signIn.sessionKey))
    } catch (error) {
      this.#o.log.warn({ userId, err: { message: (error as Error).message } }, 'lightroom-ims: could not delete a token record')
    }
    this.#o.onForget(userId, reason, set)
    return true
  }

  /**
   * Stores a refreshed set over the record it was refreshed from (`base`: the marked revision). IMS
   * has already rotated the grant, so the set is never dropped while the record may still hold the
   * grant it replaces: a store that fails, a record this instance cannot read (a newer key, say),
   * writes that keep losing: each keeps it unsaved (handed out here, retried, the lock kept). Only a
   * record holding another grant (a new sign-in) or none (a sign-out) wins over it.
   */
  async storeRefreshed (userId: string, base: string, next: TokenSet, previous: TokenSet): Promise<RefreshedWrite> {
    const keep = (revision: string, why: KeptBecause): RefreshedWrite => {
      this.keepUnsaved(userId, revision, next, previous.refreshToken)
      return { kind: 'kept', why }
    }
    for (let attempt = 0; ; attempt++) {
      let latest: StoredRead<unknown>
      try {
        if (await this.writeRefreshed(userId, base, next)) return { kind: 'stored' }
        latest = await readRecord(this.#o.store, tokenKey(userId))
      } catch {
        return keep(base, 'store-failed')
      }
      if (!latest.readable) return keep(latest.error.revision ?? base, 'unreadable')
      const stored = latest.stored
      if (stored === undefined) return { kind: 'gone' }
      if (!isTokenSet(stored.value) || stored.value.userId !== userId) return keep(stored.revision, 'unreadable')
      const sameGrant = stored.value.refreshToken === previous.refreshToken && stored.value.accessToken === previous.accessToken
      if (!sameGrant) return { kind: 'superseded', latest: stored as StoredValue<TokenSet> }
      // Still the grant IMS has just rotated away, yet every write loses: its refresh token must
      // never be spent again, so ours is kept. Otherwise it was only rewritten (re-encrypted under
      // a new key, say): our set still replaces it.
      if (attempt >= 3) return keep(stored.revision, 'lost-writes')
      base = stored.revision
    }
  }

  /** A few quick tries: a store blip should not cost a rotated grant. Runs under the refresh lock. */
  async writeRefreshed (userId: string, revision: string, next: TokenSet): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        const written = await this.#o.store.compareAndSet(tokenKey(userId), revision, next, recordTtlMs(next, this.#o.now()))
        // A refresh from a set that was waiting to be written supersedes it.
        if (written) this.#unsaved.drop(userId)
        return written
      } catch (error) {
        if (attempt >= 2) throw error
        await sleep(50 * 4 ** attempt)
      }
    }
  }

  /**
   * Marks the record, before its refresh token is spent, with the refresh about to happen (see
   * TokenManager). Resolves the record as now stored, or undefined when it changed meanwhile.
   * Store errors pass through: without the mark, the refresh token is not spent.
   */
  async markRefreshing (stored: StoredValue<TokenSet>, intent: RefreshIntent): Promise<StoredValue<TokenSet> | undefined> {
    const { userId } = stored.value
    const marked: TokenSet = { ...stored.value, refreshing: intent }
    if (!await this.#o.store.compareAndSet(tokenKey(userId), stored.revision, marked, recordTtlMs(marked, this.#o.now()))) return undefined
    // The revision to compare the refreshed set against is the envelope just written: read it back.
    const after = await this.#o.store.get<TokenSet>(tokenKey(userId))
    return after?.value.refreshing?.id === intent.id ? after : undefined
  }

  /** Takes a refresh's mark out again (IMS refused the refresh: nothing was spent). Best effort. */
  async unmark (marked: StoredValue<TokenSet>): Promise<void> {
    const { refreshing, ...value } = marked.value
    if (refreshing === undefined) return
    await this.#o.store.compareAndSet(tokenKey(value.userId), marked.revision, value, recordTtlMs(value, this.#o.now())).catch(() => {})
  }

  /** See UnsavedSets.keep(): the set is handed out here and written as soon as the store takes it. */
  keepUnsaved (userId: string, base: string, set: TokenSet, spentRefreshToken: string | undefined): void {
    this.#unsaved.keep(userId, base, set, spentRefreshToken)
  }

  /** The write of an unsaved set still to happen for this user, if any. */
  pendingWrite (userId: string): Promise<void> | undefined {
    return this.#unsaved.pendingWrite(userId)
  }

  /** The app is closing: one last try for each unsaved set. */
  async close (): Promise<void> {
    await this.#unsaved.close()
  }
}

/** Why a refreshed set was kept in memory rather than stored. */
export type KeptBecause = 'store-failed' | 'unreadable' | 'lost-writes'

const KEPT_MESSAGES: Record<KeptBecause, string> = {
  'store-failed': 'lightroom-ims: could not store refreshed tokens; keeping them in memory until the store is back',
  unreadable: 'lightroom-ims: the token record became unreadable during a refresh; keeping the refreshed tokens in memory and writing them over it',
  'lost-writes': 'lightroom-ims: refreshed tokens lost four writes in a row; keeping them in memory until one lands'
}

/** The log line for a refreshed set kept in memory. */
export function keptMessage (why: KeptBecause): string {
  return KEPT_MESSAGES[why]
}

/** storeRefreshed(): written, kept (see KeptBecause), or lost to a newer grant or a sign-out. */
export type RefreshedWrite =
  | { kind: 'stored' }
  | { kind: 'kept', why: KeptBecause }
  | { kind: 'superseded', latest: StoredValue<TokenSet> }
  | { kind: 'gone' }

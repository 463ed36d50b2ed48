import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { refreshChannel, traced } from '../diagnostics/channels.js'
import { imsUnavailable, loginRequired, storeUnavailable } from '../errors.js'
import type { BackendLock, StoredRead, StoredValue } from '../store/types.js'
import { Cooldown } from './cooldown.js'
import { ImsHealth, imsCoolingDown } from './ims-health.js'
import { HELD_BACK, RefreshCall, type RefreshOutcome } from './refresh-call.js'
import { RefreshIntents } from './refresh-intents.js'
import { refreshReason } from './refresh-policy.js'
import { TokenRecords } from './token-records.js'
import { removeEverywhere, revokeAll } from './revocation.js'
import { retiredRefreshTokens } from './sign-ins.js'
import type { SignInEntry, TokenSet } from './token-set.js'
import type { GetOptions, RefreshReason, TokenEvents, TokenManagerOptions } from './token-types.js'

export type { GetOptions, ImsCalls, RefreshReason, RenewOptions, RenewReport, TokenEvents, TokenManagerOptions } from './token-types.js'

export { TOKEN_PREFIX, tokenKey } from './token-records.js'

const FORCED_REFRESH_FLOOR_MS = 30_000
/** A token with less than this left is treated as expired by callers deciding whether to wait. */
const STILL_VALID_FLOOR_MS = 10_000

/** What one refresh flight carries: the caller's options and the logger of the request that started it. */
type FlightOptions = GetOptions & { log: FastifyBaseLogger }

/**
 * Fresh-or-refresh for every user, with at most one refresh per user at a time: single-flight inside
 * this process, a store lock across processes, and a re-read after taking the lock, because IMS may
 * rotate refresh tokens and a second refresh with a used token would log the user out.
 */
export class TokenManager {
  readonly events = new EventEmitter<TokenEvents>()
  readonly #o: Required<TokenManagerOptions>
  readonly #records: TokenRecords
  readonly #inflight = new Map<string, Promise<TokenSet>>()
  /** Whether IMS failed a moment ago, anywhere in the fleet: then nobody asks it again for a while. */
  readonly #health: ImsHealth
  /** One refresh under a held lock (refresh-call.ts). */
  readonly #refresh: RefreshCall
  /** Users refreshed on request (force) a moment ago: not again before the floor has passed. */
  readonly #forcedRecently: Cooldown
  /** Users whose refresh lock could not be extended during the refresh running now. */
  readonly #lockLost = new Set<string>()

  constructor (options: TokenManagerOptions) {
    this.#o = { lockTtlMs: 15_000, waitForPeerMs: 30_000, pollIntervalMs: 100, failureCooldownMs: 5_000, maxSessionsPerUser: 10, ...options }
    this.#health = new ImsHealth(this.#o.store, this.#o.now, this.#o.failureCooldownMs, this.#o.log)
    this.#forcedRecently = new Cooldown(this.#o.now, FORCED_REFRESH_FLOOR_MS)
    this.#records = new TokenRecords({
      ...this.#o,
      // Well inside the lock's TTL, so the store's return is noticed long before the lock (and the
      // grace other instances give a mark like ours) runs out.
      unsavedRetryMs: Math.min(Math.max(Math.floor(this.#o.lockTtlMs / 4), 10), 1000),
      onForget: (userId, reason, set) => {
        this.events.emit('logout', { userId, reason })
        // The grant that failed is gone; grants of earlier sign-ins may not be: revoke them too.
        if (set !== undefined) revokeAll(this.#o.ims, userId, retiredRefreshTokens(set, this.#o.now()), this.#o.log).catch(() => {})
      }
    })
    this.#refresh = new RefreshCall({
      records: this.#records,
      ims: this.#o.ims,
      health: this.#health,
      intents: new RefreshIntents(2 * this.#o.lockTtlMs),
      events: this.events,
      now: this.#o.now,
      isUsable: (set) => this.#isUsable(set),
      lockLost: (userId) => this.#lockLost.has(userId)
    })
  }

  /** The app is closing: refreshed sets still waiting for the store get one last try. */
  async close (): Promise<void> {
    await this.#records.close()
  }

  /** The user's stored set as it is (no refresh); an unreadable record is logged and treated as absent. */
  async read (userId: string): Promise<StoredValue<TokenSet> | undefined> {
    return await this.#records.read(userId)
  }

  /** read() for a token record fetched together with the session (one round trip): the same checks. */
  async accept (userId: string, outcome: StoredRead<unknown>): Promise<StoredValue<TokenSet> | undefined> {
    return await this.#records.accept(userId, outcome)
  }

  /**
   * The user's token set when it is known without waiting and needs no refresh: an unchanged,
   * already-checked record from a synchronous backend. Undefined means "ask usable()".
   */
  peek (userId: string): TokenSet | undefined {
    const value = this.#records.peek(userId)
    return value !== undefined && this.#isUsable(value) ? value : undefined
  }

  /**
   * Stores a token set received at sign-in with the sign-in it belongs to (its session carries the
   * same id). Other devices' sign-ins stay valid, up to the per-user cap; the oldest beyond it are
   * evicted, and the grant replaced is kept to be revoked at sign-out.
   */
  async signIn (set: TokenSet, entry: SignInEntry, log: FastifyBaseLogger = this.#o.log): Promise<void> {
    const outcome = await this.#records.writeSignIn(set, entry)
    await this.#records.deleteSessions(outcome.evictedSessionKeys)
    // Past the cap of replaced grants kept: revoked now, so none is forgotten while still live.
    await revokeAll(this.#o.ims, set.userId, outcome.overflowGrants, log)
    log.info({ userId: set.userId, accessExpiresAt: set.accessExpiresAt }, 'lightroom-ims: user signed in')
    this.events.emit('signIn', { userId: set.userId })
  }

  /**
   * Signs the user out everywhere: every grant this app holds for them is revoked at IMS (best
   * effort: IMS expires them by itself eventually), the token record is removed and with it every
   * sign-in it listed, so every session of the user ends, in every browser and on every instance.
   */
  async signOut (userId: string, log: FastifyBaseLogger = this.#o.log): Promise<void> {
    await removeEverywhere(this.#records, this.#o.ims, this.#o.now(), userId, log)
    log.info({ userId }, 'lightroom-ims: user signed out')
    this.events.emit('logout', { userId, reason: 'signed_out' })
  }

  /**
   * A usable token set for the user: the stored one while fresh, otherwise refreshed exactly once
   * (single-flight here, a store lock across processes). Rejects with LR_LOGIN_REQUIRED when the
   * user has no grant, LR_IMS_UNAVAILABLE when IMS fails and the token has expired.
   */
  async usable (userId: string, options: GetOptions = {}, from?: TokenSet, log: FastifyBaseLogger = this.#o.log): Promise<TokenSet> {
    // `from`: the set the caller read a moment ago for this user (one request, one store read).
    let set = from?.userId === userId ? from : undefined
    if (set === undefined) {
      set = (await this.#records.read(userId))?.value
      if (set === undefined) throw loginRequired()
    }
    return await this.#ensureFresh(set, { ...options, log })
  }

  /**
   * The renewal job's refresh of a grant it read as `seen`, through the same locked path as every
   * refresh, but never waiting: a user someone is refreshing right now (a request here, a peer
   * process) is left to them ('busy'), and one whose tokens changed since `seen` was read is not
   * refreshed again ('current'). 'unchanged': IMS failed and the old tokens still work.
   */
  async renew (seen: TokenSet, log: FastifyBaseLogger = this.#o.log): Promise<'renewed' | 'busy' | 'current' | 'unchanged'> {
    const { userId } = seen
    if (this.#inflight.has(userId)) return 'busy'
    const lock = await this.#tryLock(userId)
    if (lock === undefined) return 'busy'
    // #refreshHoldingLock releases the lock once it has it; every way out before that releases here.
    let handedOver = false
    try {
      // A request of this process may have started a refresh while we took the lock.
      if (this.#inflight.has(userId)) return 'busy'
      // Re-read under the lock: a peer may have renewed the grant since the job read it.
      const current = await this.#records.read(userId)
      if (current === undefined) throw loginRequired()
      if (current.value.accessToken !== seen.accessToken || current.value.refreshToken !== seen.refreshToken) return 'current'
      handedOver = true
      let heldBack = false
      const flight = this.#fly(userId, 'forced', async () => {
        const outcome = await this.#refreshHoldingLock(userId, 'forced', { rejectedAccessToken: seen.accessToken, log }, lock)
        if (outcome !== HELD_BACK) return outcome
        // Another instance's refresh may still be storing its result: the job leaves the user to it.
        heldBack = true
        throw imsUnavailable('Another instance\'s refresh of this user may still be being stored; try again shortly')
      })
      const after = await flight.catch((error: unknown) => { if (heldBack) return undefined; throw error })
      if (after === undefined) return 'busy'
      return after.accessToken !== seen.accessToken || after.refreshToken !== seen.refreshToken ? 'renewed' : 'unchanged'
    } finally {
      if (!handedOver) await lock.release().catch(() => {})
    }
  }

  /** A refresh of this user, traced, and the one every other caller in this process joins while it runs. */
  #fly (userId: string, reason: RefreshReason, run: () => Promise<TokenSet>): Promise<TokenSet> {
    const flight = traced(refreshChannel, { userId, reason }, run).finally(() => { this.#inflight.delete(userId) })
    this.#inflight.set(userId, flight)
    return flight
  }

  /** The user's refresh lock, if free; a store that cannot be asked is a 503. */
  async #tryLock (userId: string): Promise<BackendLock | undefined> {
    try {
      return await this.#o.store.tryLock(`refresh:${userId}`, this.#o.lockTtlMs)
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
  }

  #isUsable (set: TokenSet): boolean {
    return refreshReason(set, this.#o.now(), this.#o) === undefined
  }

  /** Due for a refresh, but good for a while yet: fine to hand out while someone else refreshes. */
  #stillValid (set: TokenSet, reason: RefreshReason): boolean {
    return reason !== 'forced' && set.accessExpiresAt - this.#o.now() > STILL_VALID_FLOOR_MS
  }

  async #ensureFresh (set: TokenSet, options: FlightOptions): Promise<TokenSet> {
    // One forced refresh per user per FORCED_REFRESH_FLOOR_MS: a Lightroom that keeps refusing a
    // fresh token (a misprovisioned key, a gateway fault) must not cost an IMS call per request.
    const forced = options.force === true && (options.rejectedAccessToken === undefined || options.rejectedAccessToken === set.accessToken) &&
      !this.#forcedRecently.active(set.userId)
    const reason: RefreshReason | undefined = forced ? 'forced' : refreshReason(set, this.#o.now(), this.#o)
    if (reason === undefined) return set
    if (set.refreshToken === undefined) {
      if (reason !== 'forced' && this.#o.now() < set.accessExpiresAt) return set
      throw loginRequired('The session has expired and the provider gave no refresh token; sign in again')
    }
    const running = this.#inflight.get(set.userId)
    // A refresh is under way and this token still works: use it now rather than wait for the new one.
    if (running !== undefined) return this.#stillValid(set, reason) ? set : await running
    if (this.#health.knownDown()) {
      if (reason !== 'forced' && this.#o.now() < set.accessExpiresAt) return set
      throw imsCoolingDown()
    }
    const flight = this.#fly(set.userId, reason, async () => await this.#refreshUnderLock(set.userId, reason, options))
    if (reason === 'forced') flight.then(() => { this.#forcedRecently.start(set.userId) }, () => {})
    return await flight
  }

  async #refreshUnderLock (userId: string, reason: RefreshReason, options: FlightOptions): Promise<TokenSet> {
    // Real time, not the injectable clock: this bounds how long we actually wait.
    const deadline = Date.now() + this.#o.lockTtlMs + this.#o.waitForPeerMs
    let seen: string | undefined
    for (;;) {
      const lock = await this.#tryLock(userId)
      if (lock !== undefined) {
        const result = await this.#refreshHoldingLock(userId, reason, options, lock)
        if (result !== HELD_BACK) return result
      }
      // Someone else (another process) is refreshing, or may just have: wait for their result rather than racing them.
      const current = await this.#records.read(userId)
      if (current === undefined) throw loginRequired()
      if (seen !== undefined && current.revision !== seen && this.#isUsable(current.value)) return current.value
      if (seen === undefined && reason !== 'forced' && this.#isUsable(current.value)) return current.value
      // A peer holds the lock (refreshing, or dead until its lock expires): nobody waits for it
      // while the token they have still works. Only an expired token waits for the peer's result.
      if (seen === undefined && this.#stillValid(current.value, reason)) return current.value
      seen ??= current.revision
      if (Date.now() > deadline) {
        if (this.#o.now() < current.value.accessExpiresAt) return current.value
        throw imsUnavailable('Timed out waiting for another process to refresh the token')
      }
      await sleep(this.#o.pollIntervalMs)
    }
  }

  async #refreshHoldingLock (userId: string, reason: RefreshReason, options: FlightOptions, lock: BackendLock): Promise<RefreshOutcome> {
    // An extension that answers after this refresh ended speaks of this lock only: it must not
    // mark the user's next refresh as having lost its lock.
    let finished = false
    const lost = (): void => { if (!finished) this.#lockLost.add(userId) }
    const keepAlive = setInterval(() => {
      lock.extend(this.#o.lockTtlMs).then((held) => {
        if (held || finished) return
        lost()
        options.log.warn({ userId }, 'lightroom-ims: refresh lock lost while refreshing')
      }, lost)
    }, Math.max(Math.floor(this.#o.lockTtlMs / 3), 10))
    keepAlive.unref()
    try {
      // Re-read under the lock: the previous holder may have refreshed while we waited for it.
      const stored = await this.#records.read(userId)
      if (stored === undefined) throw loginRequired()
      const stillRejected = options.rejectedAccessToken === undefined || options.rejectedAccessToken === stored.value.accessToken
      if (reason === 'forced' ? !stillRejected : this.#isUsable(stored.value)) return stored.value
      return await this.#refresh.run(stored, reason, options.log)
    } finally {
      finished = true
      this.#lockLost.delete(userId)
      const release = async (): Promise<void> => {
        clearInterval(keepAlive)
        await lock.release().catch(() => {})
      }
      // A refreshed set still to be written keeps the lock (renewed) until it is: no one else may
      // refresh from the record it replaces.
      const pending = this.#records.pendingWrite(userId)
      if (pending === undefined) await release()
      else pending.then(release, release)
    }
  }
}

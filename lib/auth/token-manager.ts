import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { refreshChannel, traced } from '../diagnostics/channels.js'
import { ImsError, type LightroomAuthError, imsUnavailable, loginRequired, storeUnavailable } from '../errors.js'
import type { BackendLock, StoredRead, StoredValue } from '../store/types.js'
import { Cooldown } from './cooldown.js'
import { ImsHealth, type ImsVerdict } from './ims-health.js'
import { RefreshIntents } from './refresh-intents.js'
import { refreshReason } from './refresh-policy.js'
import { keptMessage, TokenRecords } from './token-records.js'
import { removeEverywhere, revokeAll } from './revocation.js'
import { retiredRefreshTokens } from './sign-ins.js'
import { parseTokenResponse, type SignInEntry, type TokenSet } from './token-set.js'
import type { GetOptions, RefreshReason, TokenEvents, TokenManagerOptions } from './token-types.js'

export type { GetOptions, ImsCalls, RefreshReason, RenewOptions, RenewReport, TokenEvents, TokenManagerOptions } from './token-types.js'

export { TOKEN_PREFIX, tokenKey } from './token-records.js'

const FORCED_REFRESH_FLOOR_MS = 30_000
/** A token with less than this left is treated as expired by callers deciding whether to wait. */
const STILL_VALID_FLOOR_MS = 10_000

/** #refreshHoldingLock: another instance's refresh may have a result still to be stored; wait as for a lock holder. */
const HELD_BACK = Symbol('held-back')
type RefreshOutcome = TokenSet | typeof HELD_BACK

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
  readonly #intents: RefreshIntents
  /** Users refreshed on request (force) a moment ago: not again before the floor has passed. */
  readonly #forcedRecently: Cooldown
  /** Users whose refresh lock could not be extended during the refresh running now. */
  readonly #lockLost = new Set<string>()

  constructor (options: TokenManagerOptions) {
    this.#o = { lockTtlMs: 15_000, waitForPeerMs: 30_000, pollIntervalMs: 100, failureCooldownMs: 5_000, maxSessionsPerUser: 10, ...options }
    this.#health = new ImsHealth(this.#o.store, this.#o.now, this.#o.failureCooldownMs, this.#o.log)
    this.#intents = new RefreshIntents(2 * this.#o.lockTtlMs)
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
    let lock: BackendLock | undefined
    try {
      lock = await this.#o.store.tryLock(`refresh:${userId}`, this.#o.lockTtlMs)
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
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
      const flight = traced(refreshChannel, { userId, reason: 'forced' as const }, async () => {
        const outcome = await this.#refreshHoldingLock(userId, 'forced', { rejectedAccessToken: seen.accessToken, log }, lock)
        if (outcome !== HELD_BACK) return outcome
        // Another instance's refresh may still be storing its result: the job leaves the user to it.
        heldBack = true
        throw imsUnavailable('Another instance\'s refresh of this user may still be being stored; try again shortly')
      }).finally(() => { this.#inflight.delete(userId) })
      this.#inflight.set(userId, flight)
      const after = await flight.catch((error: unknown) => { if (heldBack) return undefined; throw error })
      if (after === undefined) return 'busy'
      return after.accessToken !== seen.accessToken || after.refreshToken !== seen.refreshToken ? 'renewed' : 'unchanged'
    } finally {
      if (!handedOver) await lock.release().catch(() => {})
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
      throw imsUnavailable('Adobe IMS failed a moment ago and the access token has expired; try again shortly')
    }
    const flight = traced(refreshChannel, { userId: set.userId, reason }, async () => await this.#refreshUnderLock(set.userId, reason, options)).finally(() => {
      this.#inflight.delete(set.userId)
    })
    this.#inflight.set(set.userId, flight)
    if (reason === 'forced') flight.then(() => { this.#forcedRecently.start(set.userId) }, () => {})
    return await flight
  }

  async #refreshUnderLock (userId: string, reason: RefreshReason, options: FlightOptions): Promise<TokenSet> {
    // Real time, not the injectable clock: this bounds how long we actually wait.
    const deadline = Date.now() + this.#o.lockTtlMs + this.#o.waitForPeerMs
    let seen: string | undefined
    for (;;) {
      let lock: BackendLock | undefined
      try {
        lock = await this.#o.store.tryLock(`refresh:${userId}`, this.#o.lockTtlMs)
      } catch (error) {
        throw storeUnavailable(undefined, error)
      }
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
      return await this.#refreshNow(stored, reason, options.log)
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

  /** `verdict`: IMS's health as already asked in this refresh (a claimed attempt is not asked for twice). */
  async #refreshNow (stored: StoredValue<TokenSet>, reason: RefreshReason, log: FastifyBaseLogger, depth = 0, asked?: ImsVerdict): Promise<RefreshOutcome> {
    const previous = stored.value
    const { userId } = previous
    // The last holder's refresh may have worked without its result being stored yet: give its
    // write time to land rather than spend a refresh token IMS may already have rotated away.
    if (this.#intents.holdsBack(previous.refreshing)) return HELD_BACK
    const verdict = asked ?? await this.#health.verdict()
    if (verdict === 'wait') return this.#fallback(previous, imsUnavailable('Adobe IMS failed a moment ago and the access token has expired; try again shortly'))
    // Write-ahead: the record says a refresh is spending its token before it is spent (see
    // refresh-intents.ts). A store that cannot take that mark cannot take the result either.
    let marked: StoredValue<TokenSet> | undefined
    try {
      marked = await this.#records.markRefreshing(stored, this.#intents.next(this.#o.now()))
    } catch (error) {
      log.warn({ userId }, 'lightroom-ims: the store is unreachable; not refreshing until it is back')
      return this.#fallback(previous, storeUnavailable(undefined, error))
    }
    if (marked === undefined) return await this.#afterChange(stored, reason, log, depth, verdict)
    let body: Record<string, unknown>
    try {
      body = await this.#o.ims.refresh(previous.refreshToken!)
    } catch (error) {
      return await this.#onRefreshError(marked, reason, error, log, verdict)
    }
    if (verdict === 'probe') await this.#health.recovered()
    let next: TokenSet
    try {
      next = parseTokenResponse(body, { now: this.#o.now(), previous, userId })
      // The sign-ins and replaced grants belong to the record, not to one token response.
      if (previous.signIns !== undefined) next.signIns = previous.signIns
      if (previous.retiredGrants !== undefined) next.retiredGrants = previous.retiredGrants
      // The provider kept the refresh token: renewal is not on offer now (no rotation, or not enabled
      // for this API key). Without this mark, every request of the next week would ask again.
      if (next.refreshToken === previous.refreshToken) next.renewalCheckedAt = this.#o.now()
    } catch (error) {
      log.error({ userId, err: { message: (error as Error).message } }, 'lightroom-ims: unusable refresh response')
      await this.#health.failed()
      return this.#fallback(previous, imsUnavailable('The provider sent an unusable token response'))
    }
    const refreshed = { userId, reason, accessExpiresAt: next.accessExpiresAt, refreshRotated: next.refreshToken !== previous.refreshToken }
    const write = await this.#records.storeRefreshed(userId, marked.revision, next, previous)
    if (write.kind === 'gone') throw loginRequired()
    if (write.kind === 'superseded') {
      // A newer set landed meanwhile (a new sign-in, or a peer whose lock outlived ours): it wins,
      // and if it needs a refresh itself, that happens here, still under our lock.
      const { latest } = write
      return this.#isUsable(latest.value) ? latest.value : await this.#refreshNow(latest, reason, log, depth + 1, verdict)
    }
    if (write.kind === 'kept') {
      // IMS has already rotated the grant: these tokens are now the only ones that work. Handed out,
      // and written once the store takes them; the lock is held (renewed) until then.
      log.error({ userId, why: write.why }, keptMessage(write.why))
    }
    log.info(refreshed, 'lightroom-ims: tokens refreshed')
    this.events.emit('refresh', refreshed)
    return next
  }

  /** The record changed between the re-read and the mark (a sign-in, a re-encryption): decide again from what is there. */
  async #afterChange (stored: StoredValue<TokenSet>, reason: RefreshReason, log: FastifyBaseLogger, depth: number, verdict: ImsVerdict): Promise<RefreshOutcome> {
    const latest = await this.#records.read(stored.value.userId)
    if (latest === undefined) throw loginRequired()
    const replaced = latest.value.accessToken !== stored.value.accessToken
    if (replaced ? this.#isUsable(latest.value) : reason !== 'forced' && this.#isUsable(latest.value)) return latest.value
    if (depth >= 3) return this.#fallback(latest.value, storeUnavailable('The token record kept changing during a refresh; try again'))
    return await this.#refreshNow(latest, reason, log, depth + 1, verdict)
  }

  async #onRefreshError (stored: StoredValue<TokenSet>, reason: RefreshReason, error: unknown, log: FastifyBaseLogger, verdict: ImsVerdict): Promise<RefreshOutcome> {
    const previous = stored.value
    const { userId } = previous
    const ims = error instanceof ImsError ? error : undefined
    const code = ims?.error ?? 'unknown'
    this.events.emit('refreshFailed', { userId, reason, error: code, transient: ims?.transient ?? true })
    // A retry that met invalid_grant right after a timeout or reset may only mean IMS did use the
    // token on the attempt whose answer we lost. That is not proof the grant is gone: keep the
    // record this time; if it really is gone, the next refresh says so without that doubt.
    const afterLostAnswer = ims?.cause instanceof ImsError && ims.cause.transient
    // Without the lock, a peer may be refreshing with this same token right now, its write not yet
    // landed: our invalid_grant may be its success. Nothing is deleted on that doubt either.
    const lockLost = this.#lockLost.has(userId)
    // IMS answered about the grant, so it is up: a claimed attempt after an outage lets the fleet go.
    if (code === 'invalid_grant' && verdict === 'probe') await this.#health.recovered()
    if (code === 'invalid_grant' && !afterLostAnswer && !lockLost) {
      // Another process may have refreshed with this very token a moment ago (rotation): only a
      // grant that is still the stored one is really gone.
      const latest = await this.#records.read(userId)
      if (latest !== undefined && latest.value.refreshToken !== previous.refreshToken) {
        // Still holding the lock: refresh directly rather than through ensureFresh's single-flight,
        // which would wait on this very flight.
        return this.#isUsable(latest.value) ? latest.value : await this.#refreshNow(latest, reason, log, 0, verdict)
      }
      log.info({ userId, debugId: ims?.debugId }, 'lightroom-ims: grant rejected by the provider (invalid_grant); signing the user out')
      if (latest !== undefined && !await this.#records.forget(userId, 'invalid_grant', latest.revision, latest.value)) {
        // Rewritten while we removed it: a sign-in that just landed is not ours to end.
        const after = await this.#records.read(userId)
        if (after !== undefined && after.value.refreshToken !== previous.refreshToken && this.#isUsable(after.value)) return after.value
      }
      throw loginRequired('The Adobe sign-in has expired or was revoked; sign in again')
    }
    log.warn({ userId, error: code, status: ims?.status, debugId: ims?.debugId, transient: ims?.transient }, 'lightroom-ims: token refresh failed')
    // IMS answered, so it did not rotate the token: the mark goes, and the next holder (in any
    // process) needs no grace. Without an answer (timeout, reset) the token may be spent: it stays.
    if (ims?.status !== undefined && !afterLostAnswer) await this.#records.unmark(stored)
    // IMS's own trouble (not a doubt about this grant) holds back the whole fleet for a while.
    // Written before the lock is released: the next holder, in any process, finds it.
    if (code !== 'invalid_grant') await this.#health.failed()
    return this.#fallback(previous, imsUnavailable(undefined, error))
  }

  /** Nothing is deleted on a failure we cannot attribute to the grant: the current token is used while it lasts. */
  #fallback (previous: TokenSet, error: LightroomAuthError): TokenSet {
    if (this.#o.now() < previous.accessExpiresAt) return previous
    throw error
  }
}

/**
 * One refresh of one user, run while the caller holds the user's refresh lock: ask the fleet whether
 * IMS is worth asking, mark the record, spend the refresh token, store what comes back, and decide
 * what a failure means (a grant really gone, or IMS's own trouble). Deciding who refreshes and when
 * (single-flight, locks, waiting for peers) is TokenManager's job.
 */
import type { EventEmitter } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import { ImsError, type LightroomAuthError, imsUnavailable, loginRequired, storeUnavailable } from '../errors.js'
import type { StoredValue } from '../store/types.js'
import { imsCoolingDown, type ImsHealth, type ImsVerdict } from './ims-health.js'
import type { RefreshIntents } from './refresh-intents.js'
import { keptMessage, type TokenRecords } from './token-records.js'
import { parseTokenResponse, type TokenSet } from './token-set.js'
import type { ImsCalls, RefreshReason, TokenEvents } from './token-types.js'

/** Another instance's refresh may have a result still to be stored: the caller waits as for a lock holder. */
export const HELD_BACK = Symbol('held-back')
export type RefreshOutcome = TokenSet | typeof HELD_BACK

export interface RefreshDependencies {
  records: TokenRecords
  ims: ImsCalls
  health: ImsHealth
  intents: RefreshIntents
  events: EventEmitter<TokenEvents>
  now: () => number
  /** Fresh enough to hand out without a refresh (TokenManager's rule). */
  isUsable: (set: TokenSet) => boolean
  /** Whether the lock of the refresh running for this user could not be extended. */
  lockLost: (userId: string) => boolean
}

export class RefreshCall {
  readonly #records: TokenRecords
  readonly #ims: ImsCalls
  readonly #health: ImsHealth
  readonly #intents: RefreshIntents
  readonly #events: EventEmitter<TokenEvents>
  readonly #now: () => number
  readonly #isUsable: (set: TokenSet) => boolean
  readonly #lockLost: (userId: string) => boolean

  constructor (deps: RefreshDependencies) {
    this.#records = deps.records
    this.#ims = deps.ims
    this.#health = deps.health
    this.#intents = deps.intents
    this.#events = deps.events
    this.#now = deps.now
    this.#isUsable = deps.isUsable
    this.#lockLost = deps.lockLost
  }

  /** Refreshes from `stored`, the record as re-read under the lock. */
  async run (stored: StoredValue<TokenSet>, reason: RefreshReason, log: FastifyBaseLogger): Promise<RefreshOutcome> {
    return await this.#refreshNow(stored, reason, log)
  }

  /** `verdict`: IMS's health as already asked in this refresh (a claimed attempt is not asked for twice). */
  async #refreshNow (stored: StoredValue<TokenSet>, reason: RefreshReason, log: FastifyBaseLogger, depth = 0, asked?: ImsVerdict): Promise<RefreshOutcome> {
    const previous = stored.value
    const { userId } = previous
    // The last holder's refresh may have worked without its result being stored yet: give its
    // write time to land rather than spend a refresh token IMS may already have rotated away.
    if (this.#intents.holdsBack(previous.refreshing)) return HELD_BACK
    const verdict = asked ?? await this.#health.verdict()
    if (verdict === 'wait') return this.#fallback(previous, imsCoolingDown())
    // Write-ahead: the record says a refresh is spending its token before it is spent (see
    // refresh-intents.ts). A store that cannot take that mark cannot take the result either.
    let marked: StoredValue<TokenSet> | undefined
    try {
      marked = await this.#records.markRefreshing(stored, this.#intents.next(this.#now()))
    } catch (error) {
      log.warn({ userId }, 'lightroom-ims: the store is unreachable; not refreshing until it is back')
      return this.#fallback(previous, storeUnavailable(undefined, error))
    }
    if (marked === undefined) return await this.#afterChange(stored, reason, log, depth, verdict)
    let body: Record<string, unknown>
    try {
      body = await this.#ims.refresh(previous.refreshToken!)
    } catch (error) {
      return await this.#onRefreshError(marked, reason, error, log, verdict)
    }
    if (verdict === 'probe') await this.#health.recovered()
    let next: TokenSet
    try {
      next = parseTokenResponse(body, { now: this.#now(), previous, userId })
      // The sign-ins and replaced grants belong to the record, not to one token response.
      if (previous.signIns !== undefined) next.signIns = previous.signIns
      if (previous.retiredGrants !== undefined) next.retiredGrants = previous.retiredGrants
      // The provider kept the refresh token: renewal is not on offer now (no rotation, or not enabled
      // for this API key). Without this mark, every request of the next week would ask again.
      if (next.refreshToken === previous.refreshToken) next.renewalCheckedAt = this.#now()
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
    this.#events.emit('refresh', refreshed)
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
    this.#events.emit('refreshFailed', { userId, reason, error: code, transient: ims?.transient ?? true })
    // A retry that met invalid_grant right after a timeout or reset may only mean IMS did use the
    // token on the attempt whose answer we lost. That is not proof the grant is gone: keep the
    // record this time; if it really is gone, the next refresh says so without that doubt.
    const afterLostAnswer = ims?.cause instanceof ImsError && ims.cause.transient
    // Without the lock, a peer may be refreshing with this same token right now, its write not yet
    // landed: our invalid_grant may be its success. Nothing is deleted on that doubt either.
    const lockLost = this.#lockLost(userId)
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
    if (this.#now() < previous.accessExpiresAt) return previous
    throw error
  }
}

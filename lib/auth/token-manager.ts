import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import { ImsError, LightroomAuthError, StoreRecordError, imsUnavailable, loginRequired, storeUnavailable } from '../errors.js'
import type { BackendLock, StoredValue, TokenStore } from '../store/types.js'
import { isSignedOutRecord, isTokenSet, parseTokenResponse, type SignedOutRecord, type TokenSet } from './token-set.js'

/** The one IMS call the manager needs; ImsClient implements it. */
export interface TokenRefresher {
  refresh (refreshToken: string): Promise<Record<string, unknown>>
}

export interface TokenManagerOptions {
  store: TokenStore
  ims: TokenRefresher
  log: FastifyBaseLogger
  now: () => number
  refreshMarginMs: number
  renewRefreshAfterMs: number
  /** How long a signed-out record is kept: as long as any session it must end could live. */
  sessionMaxAgeMs: number
  /** How long a refresh lock lives unless renewed; renewed every third of it while the refresh runs. */
  lockTtlMs?: number
  /** How long a caller that lost the lock race waits for the winner's result. */
  waitForPeerMs?: number
  /** How often a waiting caller re-reads the store. */
  pollIntervalMs?: number
  /**
   * After a refresh failed for a reason that is not the grant's (IMS down, timing out, answering
   * garbage), how long to answer from what we have instead of asking IMS again: the still-valid
   * token, or an immediate 503. Without it, every request during an outage waits out the retries.
   */
  failureCooldownMs?: number
}

export type RefreshReason = 'expiring' | 'renewal' | 'forced'

/** Events for operators; payloads carry user ids and times, never a token. */
export interface TokenEvents {
  refresh: [{ userId: string, reason: RefreshReason, accessExpiresAt: number, refreshRotated: boolean }]
  logout: [{ userId: string, reason: 'invalid_grant' | 'corrupt_record' | 'signed_out' }]
  signIn: [{ userId: string }]
  refreshFailed: [{ userId: string, reason: RefreshReason, error: string, transient: boolean }]
}

export interface GetOptions {
  /** Refresh even when the stored access token looks fresh (Lightroom answered 401, "Refresh now"). */
  force?: boolean
  /** With force: only refresh while this is still the stored access token (a peer may have refreshed already). */
  rejectedAccessToken?: string
}

export interface RenewReport { scanned: number, renewed: number, failed: number, loggedOut: number }

const TOKEN_PREFIX = 'tokens:'
const DAY_MS = 86_400_000
// When IMS says nothing about the refresh token's life, assume its documented default.
const DEFAULT_REFRESH_LIFETIME_MS = 14 * DAY_MS

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export function tokenKey (userId: string): string {
  return `${TOKEN_PREFIX}${userId}`
}

/**
 * Fresh-or-refresh for every user, with at most one refresh per user at a time: single-flight inside
 * this process, a store lock across processes, and a re-read after taking the lock, because IMS may
 * rotate refresh tokens and a second refresh with a used token would log the user out.
 */
export class TokenManager {
  readonly events = new EventEmitter<TokenEvents>()
  readonly #o: Required<TokenManagerOptions>
  readonly #inflight = new Map<string, Promise<TokenSet>>()
  /** Refreshed sets the store could not take (it was down): written back at the next read. */
  readonly #unsaved = new Map<string, { base: string, set: TokenSet }>()
  /** Users whose last refresh failed for IMS's reasons, with when to try IMS again. */
  readonly #cooldown = new Map<string, number>()
  /** Users whose refresh lock could not be extended during the refresh running now. */
  readonly #lockLost = new Set<string>()
  /** Values already known to be this user's well-formed token set (see read()). */
  readonly #checked = new WeakMap<object, string>()

  constructor (options: TokenManagerOptions) {
    this.#o = { lockTtlMs: 15_000, waitForPeerMs: 30_000, pollIntervalMs: 100, failureCooldownMs: 5_000, ...options }
  }

  /** Reads a user's token set; an unreadable record is logged (without content) and treated as absent. */
  async read (userId: string): Promise<StoredValue<TokenSet> | undefined> {
    const pending = this.#unsaved.get(userId)
    if (pending !== undefined) await this.#flushUnsaved(userId, pending)
    let stored: StoredValue<unknown> | undefined
    try {
      stored = await this.#o.store.get<unknown>(tokenKey(userId))
    } catch (error) {
      if (error instanceof StoreRecordError) {
        this.#o.log.warn({ userId, reason: error.reason }, 'lightroom-ims: stored token record is unreadable; the user must sign in again')
        // A key id we do not hold may be one a newer instance already has (a rolling key rotation):
        // that record is left alone for it. Anything else is beyond repair.
        if (error.reason !== 'unknown-key') await this.#forget(userId, 'corrupt_record')
        return undefined
      }
      throw storeUnavailable(undefined, error)
    }
    if (stored === undefined) return undefined
    if (isSignedOutRecord(stored.value) && stored.value.userId === userId) return undefined
    // The store hands out the same frozen value while a record is unchanged: check its shape once.
    if (this.#checked.get(stored.value as object) === userId) return stored as StoredValue<TokenSet>
    if (!isTokenSet(stored.value) || stored.value.userId !== userId) {
      this.#o.log.warn({ userId, reason: 'shape' }, 'lightroom-ims: stored token record has an unexpected shape; the user must sign in again')
      await this.#forget(userId, 'corrupt_record')
      return undefined
    }
    if (Object.isFrozen(stored.value)) this.#checked.set(stored.value, userId)
    return stored as StoredValue<TokenSet>
  }

  /**
   * The user's token set when it is known without waiting and needs no refresh: an unchanged,
   * already-checked record from a synchronous backend. Undefined means "take the async path".
   */
  peekUsable (userId: string): TokenSet | undefined {
    if (this.#unsaved.has(userId)) return undefined
    const value = this.#o.store.peek<TokenSet>(tokenKey(userId))?.value
    if (value === undefined || this.#checked.get(value) !== userId) return undefined
    return this.#refreshReason(value) === undefined ? value : undefined
  }

  /**
   * Stores a token set received at sign-in (replacing whatever the user had), carrying over the
   * time of the user's last sign-out so that sessions from before it stay signed out.
   */
  async save (set: TokenSet): Promise<void> {
    try {
      const before = await this.#o.store.get<unknown>(tokenKey(set.userId)).catch(() => undefined)
      const floor = isSignedOutRecord(before?.value) ? before.value.signedOutAt : (before?.value as TokenSet | undefined)?.sessionsValidAfter
      const next = typeof floor === 'number' ? { ...set, sessionsValidAfter: floor } : set
      await this.#o.store.set(tokenKey(set.userId), next, this.#ttl(next))
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
  }

  /**
   * Signs the user out everywhere: the tokens are replaced by a signed-out record, which also ends
   * every session created before now, in every browser and on every instance.
   */
  async signOut (userId: string): Promise<void> {
    try {
      await this.#o.store.set(tokenKey(userId), this.#signedOutRecord(userId), this.#o.sessionMaxAgeMs)
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
  }

  #signedOutRecord (userId: string): SignedOutRecord {
    return { userId, signedOutAt: this.#o.now() }
  }

  /** Whether a session created at `createdAt` still belongs to the user's current sign-in. */
  sessionStillValid (set: TokenSet, createdAt: number): boolean {
    return set.sessionsValidAfter === undefined || createdAt >= set.sessionsValidAfter
  }

  /** True when this set can be handed out without a refresh. */
  isUsable (set: TokenSet): boolean {
    return this.#refreshReason(set) === undefined
  }

  /** A valid access token for the user: the stored one while fresh, otherwise refreshed exactly once. */
  async accessToken (userId: string, options: GetOptions = {}): Promise<string> {
    return (await this.tokenSet(userId, options)).accessToken
  }

  async tokenSet (userId: string, options: GetOptions = {}): Promise<TokenSet> {
    const stored = await this.read(userId)
    if (stored === undefined) throw loginRequired()
    return await this.ensureFresh(stored.value, options)
  }

  /** Given a set just read, returns it if usable or refreshes it (single-flight). */
  async ensureFresh (set: TokenSet, options: GetOptions = {}): Promise<TokenSet> {
    const forced = options.force === true && (options.rejectedAccessToken === undefined || options.rejectedAccessToken === set.accessToken)
    const reason: RefreshReason | undefined = forced ? 'forced' : this.#refreshReason(set)
    if (reason === undefined) return set
    if (set.refreshToken === undefined) {
      if (reason !== 'forced' && this.#o.now() < set.accessExpiresAt) return set
      throw loginRequired('The session has expired and the provider gave no refresh token; sign in again')
    }
    const running = this.#inflight.get(set.userId)
    if (running !== undefined) return await running
    const coolingUntil = this.#cooldown.get(set.userId)
    if (coolingUntil !== undefined) {
      if (this.#o.now() < coolingUntil) {
        if (reason !== 'forced' && this.#o.now() < set.accessExpiresAt) return set
        throw imsUnavailable('Adobe IMS failed a moment ago and the access token has expired; try again shortly')
      }
      this.#cooldown.delete(set.userId)
    }
    const flight = this.#refreshUnderLock(set.userId, reason, options).finally(() => {
      this.#inflight.delete(set.userId)
    })
    this.#inflight.set(set.userId, flight)
    return await flight
  }

  /** Renews every stored grant whose refresh token is older than `olderThanMs` (for a periodic job). */
  async renewExpiring (olderThanMs: number): Promise<RenewReport> {
    const report: RenewReport = { scanned: 0, renewed: 0, failed: 0, loggedOut: 0 }
    for await (const key of this.#o.store.backend.scan(TOKEN_PREFIX)) {
      const userId = key.slice(TOKEN_PREFIX.length)
      try {
        const stored = await this.read(userId)
        if (stored === undefined) continue
        report.scanned++
        const age = this.#o.now() - (stored.value.refreshIssuedAt ?? stored.value.receivedAt)
        if (stored.value.refreshToken === undefined || age < olderThanMs) continue
        const before = stored.value.refreshToken
        const after = await this.ensureFresh(stored.value, { force: true, rejectedAccessToken: stored.value.accessToken })
        if (after.refreshToken !== before || after.accessToken !== stored.value.accessToken) report.renewed++
        else report.failed++
      } catch (error) {
        if (error instanceof LightroomAuthError && error.code === 'LR_LOGIN_REQUIRED') report.loggedOut++
        else report.failed++
      }
    }
    return report
  }

  #refreshReason (set: TokenSet): RefreshReason | undefined {
    const now = this.#o.now()
    // The margin never exceeds half the token's own lifetime: with a provider issuing 5-minute tokens
    // (or a test issuing 5-second ones), a 5-minute margin would refresh on every single request.
    const margin = Math.min(this.#o.refreshMarginMs, (set.accessExpiresAt - set.receivedAt) / 2)
    if (set.accessExpiresAt - now <= margin + this.#jitter(set.userId, margin)) return 'expiring'
    const issuedAt = Math.max(set.refreshIssuedAt ?? set.receivedAt, set.renewalCheckedAt ?? 0)
    if (set.refreshToken !== undefined && now - issuedAt >= this.#o.renewRefreshAfterMs) return 'renewal'
    return undefined
  }

  /**
   * Spreads refreshes of users who signed in together over up to a tenth of the margin (at most a
   * minute). Derived from the user id, so one user's decision is stable from call to call.
   */
  #jitter (userId: string, margin: number): number {
    const spread = Math.min(60_000, margin / 10)
    if (spread < 1) return 0
    // FNV-1a: cheap enough for every request, and spread is all we need from it.
    let hash = 0x811c9dc5
    for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193)
    return (hash >>> 0) % spread
  }

  #ttl (set: TokenSet): number {
    const now = this.#o.now()
    const refreshEnds = set.refreshToken === undefined
      ? set.accessExpiresAt
      : set.refreshExpiresAt ?? (set.refreshIssuedAt ?? set.receivedAt) + DEFAULT_REFRESH_LIFETIME_MS
    // A day past the end, so a record whose refresh token just expired still explains itself as a login-required.
    return Math.max(refreshEnds - now, 0) + DAY_MS
  }

  async #forget (userId: string, reason: 'invalid_grant' | 'corrupt_record', revision?: string): Promise<void> {
    try {
      const record = this.#signedOutRecord(userId)
      if (revision === undefined) await this.#o.store.set(tokenKey(userId), record, this.#o.sessionMaxAgeMs)
      else await this.#o.store.compareAndSet(tokenKey(userId), revision, record, this.#o.sessionMaxAgeMs)
    } catch (error) {
      this.#o.log.warn({ userId, err: { message: (error as Error).message } }, 'lightroom-ims: could not delete a token record')
    }
    this.events.emit('logout', { userId, reason })
  }

  async #refreshUnderLock (userId: string, reason: RefreshReason, options: GetOptions): Promise<TokenSet> {
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
      if (lock !== undefined) return await this.#refreshHoldingLock(userId, reason, options, lock)
      // Someone else (another process) is refreshing: wait for their result rather than racing them.
      const current = await this.read(userId)
      if (current === undefined) throw loginRequired()
      if (seen !== undefined && current.revision !== seen && this.isUsable(current.value)) return current.value
      if (seen === undefined && reason !== 'forced' && this.isUsable(current.value)) return current.value
      seen ??= current.revision
      if (Date.now() > deadline) {
        if (this.#o.now() < current.value.accessExpiresAt) return current.value
        throw imsUnavailable('Timed out waiting for another process to refresh the token')
      }
      await sleep(this.#o.pollIntervalMs)
    }
  }

  async #refreshHoldingLock (userId: string, reason: RefreshReason, options: GetOptions, lock: BackendLock): Promise<TokenSet> {
    const keepAlive = setInterval(() => {
      lock.extend(this.#o.lockTtlMs).then((held) => {
        if (held) return
        this.#lockLost.add(userId)
        this.#o.log.warn({ userId }, 'lightroom-ims: refresh lock lost while refreshing')
      }, () => { this.#lockLost.add(userId) })
    }, Math.max(Math.floor(this.#o.lockTtlMs / 3), 10))
    keepAlive.unref()
    try {
      // Re-read under the lock: the previous holder may have refreshed while we waited for it.
      const stored = await this.read(userId)
      if (stored === undefined) throw loginRequired()
      const stillRejected = options.rejectedAccessToken === undefined || options.rejectedAccessToken === stored.value.accessToken
      if (reason === 'forced' ? !stillRejected : this.isUsable(stored.value)) return stored.value
      return await this.#refreshNow(stored, reason)
    } finally {
      clearInterval(keepAlive)
      this.#lockLost.delete(userId)
      await lock.release().catch(() => {})
    }
  }

  async #refreshNow (stored: StoredValue<TokenSet>, reason: RefreshReason): Promise<TokenSet> {
    const previous = stored.value
    const { userId } = previous
    let body: Record<string, unknown>
    try {
      body = await this.#o.ims.refresh(previous.refreshToken!)
    } catch (error) {
      return await this.#onRefreshError(stored, reason, error)
    }
    let next: TokenSet
    try {
      next = parseTokenResponse(body, { now: this.#o.now(), previous, userId })
      if (previous.sessionsValidAfter !== undefined) next.sessionsValidAfter = previous.sessionsValidAfter
      // The provider kept the refresh token: renewal is not on offer now (no rotation, or not enabled
      // for this API key). Without this mark, every request of the next week would ask again.
      if (next.refreshToken === previous.refreshToken) next.renewalCheckedAt = this.#o.now()
    } catch (error) {
      this.#o.log.error({ userId, err: { message: (error as Error).message } }, 'lightroom-ims: unusable refresh response')
      this.#coolDown(userId)
      return this.#fallback(previous, imsUnavailable('The provider sent an unusable token response'))
    }
    let written: boolean
    try {
      written = await this.#writeRefreshed(userId, stored.revision, next)
    } catch {
      // IMS has already rotated the grant: these tokens are now the only ones that work, and
      // dropping them would sign the user out at the next refresh. Keep them in this process,
      // hand them out, and write them at the next read once the store is back.
      this.#o.log.error({ userId }, 'lightroom-ims: could not store refreshed tokens; keeping them in memory until the store is back')
      this.#unsaved.set(userId, { base: stored.revision, set: next })
      this.events.emit('refresh', { userId, reason, accessExpiresAt: next.accessExpiresAt, refreshRotated: next.refreshToken !== previous.refreshToken })
      return next
    }
    for (let attempt = 0; !written; attempt++) {
      const latest = await this.read(userId)
      if (latest === undefined) throw loginRequired()
      const sameGrant = latest.value.refreshToken === previous.refreshToken && latest.value.accessToken === previous.accessToken
      if (!sameGrant || attempt >= 3) {
        // A newer set landed meanwhile (a new sign-in, or a peer whose lock outlived ours): it wins,
        // and if it needs a refresh itself, that happens here, still under our lock.
        return this.isUsable(latest.value) ? latest.value : await this.#refreshNow(latest, reason)
      }
      // The same grant, only rewritten (re-encrypted under a new key, say): our set still replaces it.
      written = await this.#writeRefreshed(userId, latest.revision, next)
    }
    this.#o.log.debug({ userId, reason, accessExpiresAt: next.accessExpiresAt }, 'lightroom-ims: tokens refreshed')
    this.events.emit('refresh', { userId, reason, accessExpiresAt: next.accessExpiresAt, refreshRotated: next.refreshToken !== previous.refreshToken })
    return next
  }

  /** A few quick tries: a store blip should not cost a rotated grant. Still under the refresh lock. */
  async #writeRefreshed (userId: string, revision: string, next: TokenSet): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#o.store.compareAndSet(tokenKey(userId), revision, next, this.#ttl(next))
      } catch (error) {
        if (attempt >= 2) throw error
        await sleep(50 * 4 ** attempt)
      }
    }
  }

  /** Writes a refreshed set the store could not take at the time; whatever happens, it is tried once. */
  async #flushUnsaved (userId: string, pending: { base: string, set: TokenSet }): Promise<void> {
    try {
      await this.#o.store.compareAndSet(tokenKey(userId), pending.base, pending.set, this.#ttl(pending.set))
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    // Written, or the record changed meanwhile (a new sign-in wins): either way it is settled.
    this.#unsaved.delete(userId)
  }

  async #onRefreshError (stored: StoredValue<TokenSet>, reason: RefreshReason, error: unknown): Promise<TokenSet> {
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
    if (code === 'invalid_grant' && !afterLostAnswer && !lockLost) {
      // Another process may have refreshed with this very token a moment ago (rotation): only a
      // grant that is still the stored one is really gone.
      const latest = await this.read(userId)
      if (latest !== undefined && latest.value.refreshToken !== previous.refreshToken) {
        // Still holding the lock: refresh directly rather than through ensureFresh's single-flight,
        // which would wait on this very flight.
        return this.isUsable(latest.value) ? latest.value : await this.#refreshNow(latest, reason)
      }
      this.#o.log.info({ userId, debugId: ims?.debugId }, 'lightroom-ims: grant rejected by the provider (invalid_grant); signing the user out')
      if (latest !== undefined) await this.#forget(userId, 'invalid_grant', latest.revision)
      throw loginRequired('The Adobe sign-in has expired or was revoked; sign in again')
    }
    this.#o.log.warn({ userId, error: code, status: ims?.status, debugId: ims?.debugId, transient: ims?.transient }, 'lightroom-ims: token refresh failed')
    this.#coolDown(userId)
    return this.#fallback(previous, imsUnavailable(undefined, error))
  }

  #coolDown (userId: string): void {
    if (this.#o.failureCooldownMs <= 0) return
    // Bounded: users who never come back after an outage must not pile up here.
    if (this.#cooldown.size >= 10_000) {
      const now = this.#o.now()
      for (const [id, until] of this.#cooldown) if (until <= now) this.#cooldown.delete(id)
      if (this.#cooldown.size >= 10_000) this.#cooldown.clear()
    }
    this.#cooldown.set(userId, this.#o.now() + this.#o.failureCooldownMs)
  }

  /** Nothing is deleted on a failure we cannot attribute to the grant: the current token is used while it lasts. */
  #fallback (previous: TokenSet, error: LightroomAuthError): TokenSet {
    if (this.#o.now() < previous.accessExpiresAt) return previous
    throw error
  }
}

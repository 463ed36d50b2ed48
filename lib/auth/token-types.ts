/** The shapes the token manager is built from and reports with. */
import type { FastifyBaseLogger } from 'fastify'
import type { BatchOptions, BatchOutcome } from '../batch/types.js'
import type { TokenStore } from '../store/types.js'

/** The IMS calls the manager makes; ImsClient implements them. */
export interface ImsCalls {
  refresh (refreshToken: string): Promise<Record<string, unknown>>
  revoke (token: string, hint?: 'refresh_token' | 'access_token'): Promise<void>
}

export interface TokenManagerOptions {
  store: TokenStore
  ims: ImsCalls
  log: FastifyBaseLogger
  now: () => number
  refreshMarginMs: number
  renewRefreshAfterMs: number
  /** How long a session lives: sign-ins older than this are dropped from the record. */
  sessionMaxAgeMs: number
  /** Live sign-ins (sessions) kept per user; the oldest beyond it are evicted. Default 10. */
  maxSessionsPerUser?: number
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

/** renewExpiring's counts. Users with young grants are scanned and left alone: a rerun is cheap. */
export interface RenewReport extends BatchOutcome {
  /** Token records read. */
  scanned: number
  /** Grants this run renewed (one IMS refresh each). */
  renewed: number
  /** Left to someone else: a request or a peer process was refreshing the user, or had just renewed them. */
  busy: number
  /** IMS failed (the old tokens still work; the next run tries again). */
  failed: number
  /** The grant was gone at IMS (revoked, expired): the user must sign in again. */
  loggedOut: number
}

export interface RenewOptions extends BatchOptions<RenewReport> {
  /** Renew grants whose refresh token is at least this old (default: the renewRefreshAfterSeconds option). */
  olderThanSeconds?: number
  /** At most this many IMS refreshes started per second, evenly spaced (default: no cap). Per process. */
  maxPerSecond?: number
}

/**
 * When a token set needs a refresh, and how long its record is worth keeping: pure functions of the
 * set and the clock, run on every request, so nothing here awaits or allocates much.
 */
import type { RefreshReason } from './token-types.js'
import type { TokenSet } from './token-set.js'

const DAY_MS = 86_400_000
// When IMS says nothing about the refresh token's life, assume its documented default.
const DEFAULT_REFRESH_LIFETIME_MS = 14 * DAY_MS

export interface RefreshPolicy {
  refreshMarginMs: number
  renewRefreshAfterMs: number
}

/** Why this set must be refreshed now, or undefined when it can be handed out as it is. */
export function refreshReason (set: TokenSet, now: number, policy: RefreshPolicy): RefreshReason | undefined {
  // The margin never exceeds half the token's own lifetime: with a provider issuing 5-minute tokens
  // (or a test issuing 5-second ones), a 5-minute margin would refresh on every single request.
  const margin = Math.min(policy.refreshMarginMs, (set.accessExpiresAt - set.receivedAt) / 2)
  if (set.accessExpiresAt - now <= margin + jitter(set.userId, margin)) return 'expiring'
  const issuedAt = Math.max(set.refreshIssuedAt ?? set.receivedAt, set.renewalCheckedAt ?? 0)
  if (set.refreshToken !== undefined && now - issuedAt >= policy.renewRefreshAfterMs) return 'renewal'
  return undefined
}

/**
 * Spreads refreshes of users who signed in together over up to a tenth of the margin (at most a
 * minute). Derived from the user id, so one user's decision is stable from call to call.
 */
function jitter (userId: string, margin: number): number {
  const spread = Math.min(60_000, margin / 10)
  if (spread < 1) return 0
  // FNV-1a: cheap enough for every request, and spread is all we need from it.
  let hash = 0x811c9dc5
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % spread
}

/** How long the store keeps a token record: until its refresh token can no longer work, plus a day. */
export function recordTtlMs (set: TokenSet, now: number): number {
  const refreshEnds = set.refreshToken === undefined
    ? set.accessExpiresAt
    : set.refreshExpiresAt ?? (set.refreshIssuedAt ?? set.receivedAt) + DEFAULT_REFRESH_LIFETIME_MS
  // A day past the end, so a record whose refresh token just expired still explains itself as a login-required.
  return Math.max(refreshEnds - now, 0) + DAY_MS
}

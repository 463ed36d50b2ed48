/**
 * What a new sign-in does to a user's token record, as a pure function: the new tokens replace the
 * old, the sign-in joins the list of live ones (the oldest evicted beyond the cap), and the grant it
 * replaces is kept, to be revoked at sign-out. Run on every sign-in, never on a request.
 */
import type { RetiredGrant, SignInEntry, TokenSet } from './token-set.js'

const DAY_MS = 86_400_000
// IMS's documented refresh-token life, for a grant whose own claims did not say.
const DEFAULT_REFRESH_LIFETIME_MS = 14 * DAY_MS

export interface SignInOutcome {
  /** Session records of sign-ins pushed out by the cap (or past their lifetime): to delete. */
  evictedSessionKeys: string[]
  /** Replaced grants beyond the cap: revoked now rather than forgotten live. */
  overflowGrants: string[]
}

export function mergeSignIn (prior: TokenSet | undefined, set: TokenSet, entry: SignInEntry, now: number, sessionMaxAgeMs: number, cap: number): { next: TokenSet, outcome: SignInOutcome } {
  const signIns: SignInEntry[] = []
  const evictedSessionKeys: string[] = []
  for (const signIn of prior?.signIns ?? []) {
    if (now - signIn.createdAt > sessionMaxAgeMs) evictedSessionKeys.push(signIn.sessionKey)
    else signIns.push(signIn)
  }
  signIns.push(entry)
  for (const evicted of signIns.splice(0, Math.max(0, signIns.length - cap))) evictedSessionKeys.push(evicted.sessionKey)

  const retired = (prior?.retiredGrants ?? []).filter((grant) => grant.expiresAt > now)
  const replaced = prior === undefined ? undefined : retiredGrant(prior)
  if (replaced !== undefined && replaced.refreshToken !== set.refreshToken && replaced.expiresAt > now) retired.push(replaced)
  const overflowGrants = retired.splice(0, Math.max(0, retired.length - cap)).map((grant) => grant.refreshToken)

  const next: TokenSet = { ...set, signIns }
  delete next.retiredGrants
  if (retired.length > 0) next.retiredGrants = retired
  return { next, outcome: { evictedSessionKeys, overflowGrants } }
}

function retiredGrant (set: TokenSet): RetiredGrant | undefined {
  if (set.refreshToken === undefined) return undefined
  const expiresAt = set.refreshExpiresAt ?? (set.refreshIssuedAt ?? set.receivedAt) + DEFAULT_REFRESH_LIFETIME_MS
  return { refreshToken: set.refreshToken, expiresAt }
}

/** The replaced grants' refresh tokens that may still be live at IMS. */
export function retiredRefreshTokens (set: TokenSet, now: number): string[] {
  return (set.retiredGrants ?? []).filter((grant) => grant.expiresAt > now).map((grant) => grant.refreshToken)
}

/** Whether a session's sign-in is one the user's record still lists. Runs on every request. */
export function listsSignIn (set: TokenSet, signInId: string): boolean {
  const signIns = set.signIns
  if (signIns === undefined) return false
  for (let i = 0; i < signIns.length; i++) {
    if (signIns[i]!.id === signInId) return true
  }
  return false
}

import { decodeJwt } from 'jose'

/**
 * TokenSet: what we keep per user, with every expiry already turned into
 * absolute epoch milliseconds at the moment the tokens were received, so no
 * later code ever has to guess whether a number means seconds or ms.
 */
export interface TokenSet {
  /** IMS user id (`sub` of the id_token); the store key. */
  userId: string
  accessToken: string
  /** Absent only for providers/credentials that give none (no offline_access). */
  refreshToken?: string
  tokenType: string
  scope?: string
  /** Epoch ms when the access token stops working. */
  accessExpiresAt: number
  /** Epoch ms when the current refresh token was issued (JWT created_at, else receipt time). */
  refreshIssuedAt?: number
  /** Epoch ms when the refresh token expires, when it says so (IMS JWT claims). */
  refreshExpiresAt?: number
  /** Epoch ms when this set was received from the provider. */
  receivedAt: number
  /**
   * Epoch ms of the last refresh after which the provider kept the same refresh token: renewal was
   * asked for and declined, so it is not asked again until renewRefreshAfter has passed once more.
   */
  renewalCheckedAt?: number
  /**
   * The sign-ins whose sessions are still live, oldest first (capped per user). A session is valid
   * only while its sign-in id is listed here, so a missing, older or foreign record validates none.
   */
  signIns?: SignInEntry[]
  /** Grants of earlier sign-ins that a later one replaced: still live at IMS, revoked at sign-out. */
  retiredGrants?: RetiredGrant[]
  /**
   * Written just before the refresh token is spent (see TokenManager): an instance that finds a
   * refresh of someone else's here knows that its result may exist and not be stored yet.
   */
  refreshing?: RefreshIntent
}

/** A refresh under way: which one (random, per refresh) and when it began (the writer's clock). */
export interface RefreshIntent {
  id: string
  at: number
}

/** One sign-in of the user, as the token record remembers it. */
export interface SignInEntry {
  /** Random; the session record carries the same id. */
  id: string
  /** The store key of that sign-in's session record (deleted when the entry goes). */
  sessionKey: string
  createdAt: number
}

/** A replaced grant's refresh token, kept only to be revoked; never used to refresh. */
export interface RetiredGrant {
  refreshToken: string
  /** Epoch ms after which IMS no longer honours it (so it need not be revoked). */
  expiresAt: number
}

export interface ParseContext {
  /** Epoch ms "now" (injectable for tests with a fake clock). */
  now: number
  /** The set being refreshed: its refresh token and user id are kept when the response omits them. */
  previous?: TokenSet
  /** The user id when known from elsewhere (the verified id_token at sign-in). */
  userId?: string
}

/** Shortest lifetime we believe: anything below is a unit mix-up or garbage. */
export const MIN_LIFETIME_MS = 1_000
/** Longest access-token lifetime we believe (IMS gives 24 h). */
export const MAX_LIFETIME_MS = 30 * 24 * 60 * 60 * 1_000
/** Longest refresh-token lifetime we believe (IMS gives 14 days). */
export const MAX_REFRESH_LIFETIME_MS = 365 * 24 * 60 * 60 * 1_000
/**
 * Without any expiry information we cannot know the lifetime. IMS always
 * sends one; for other providers a short guess costs an early refresh, while a
 * long one would hand out dead tokens. 5 minutes keeps the cost small.
 */
export const DEFAULT_LIFETIME_MS = 5 * 60 * 1_000
/**
 * How far the issuer's `created_at` may lie in our past and still be
 * believed as the token's age. Beyond it the gap is more likely clock skew than
 * age, and believing it could make a fresh token look expired (a refresh loop).
 */
export const MAX_TRUSTED_TOKEN_AGE_MS = 5 * 60 * 1_000

export function parseTokenResponse (body: unknown, ctx: ParseContext): TokenSet {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new Error('Token response is not a JSON object')
  }
  const fields = body as Record<string, unknown>
  const { previous, now } = ctx

  const accessToken = fields.access_token
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw new Error('Token response has no access_token')
  }
  const tokenType = optionalString(fields, 'token_type') ?? 'bearer'
  // We only ever send the token as "Authorization: Bearer"; anything else (DPoP, MAC) would fail there.
  if (tokenType.toLowerCase() !== 'bearer') {
    throw new Error('Token response has an unsupported token_type (only bearer is supported)')
  }
  const responseExpiresIn = optionalNumber(fields, 'expires_in')
  const scope = optionalString(fields, 'scope') ?? previous?.scope

  const userId = ctx.userId ?? previous?.userId
  if (userId === undefined || userId === '') {
    throw new Error('Token response cannot be tied to a user: no user id known')
  }
  if (ctx.userId !== undefined && previous !== undefined && ctx.userId !== previous.userId) {
    throw new Error('Token response belongs to another user than the token set it replaces')
  }

  const set: TokenSet = {
    userId,
    accessToken,
    tokenType,
    accessExpiresAt: accessExpiry(accessToken, responseExpiresIn, now),
    receivedAt: now
  }
  if (scope !== undefined) set.scope = scope

  const newRefreshToken = optionalString(fields, 'refresh_token')
  if (newRefreshToken === '') throw new Error('Token response has an empty refresh_token')
  if (newRefreshToken !== undefined && newRefreshToken !== previous?.refreshToken) {
    Object.assign(set, newRefreshGrant(newRefreshToken, now))
  } else if (previous?.refreshToken !== undefined) {
    // No new refresh token (or the same one again): the grant we hold goes on, with its known age.
    set.refreshToken = previous.refreshToken
    if (previous.refreshIssuedAt !== undefined) set.refreshIssuedAt = previous.refreshIssuedAt
    if (previous.refreshExpiresAt !== undefined) set.refreshExpiresAt = previous.refreshExpiresAt
  }
  return set
}

/**
 * The one place a lifetime is decided. The access token's own IMS claims
 * (`created_at`, `expires_in`, both ms) come first, as Adobe's library does;
 * the expiry is anchored to our clock, minus the token's age as far as we can
 * believe it (see MAX_TRUSTED_TOKEN_AGE_MS), so issuer clock skew cannot make
 * a fresh token look dead. Otherwise the response's `expires_in`.
 */
function accessExpiry (accessToken: string, responseExpiresIn: number | undefined, now: number): number {
  const { createdAt = now, expiresIn: lifetime } = imsClaims(accessToken)
  if (lifetime !== undefined && lifetime >= MIN_LIFETIME_MS && lifetime <= MAX_LIFETIME_MS) {
    const age = Math.min(Math.max(now - createdAt, 0), MAX_TRUSTED_TOKEN_AGE_MS)
    return now + lifetime - age
  }
  return now + responseLifetimeMs(responseExpiresIn)
}

/**
 * `expires_in` is seconds on IMS v2/v3 and milliseconds on legacy v1. Read as
 * seconds first; only a value too long to be seconds (over 30 days) is read as
 * milliseconds. A small value is never reinterpreted: 86399 is 24 h, not 86 s.
 */
export function responseLifetimeMs (expiresIn: number | undefined): number {
  if (expiresIn === undefined) return DEFAULT_LIFETIME_MS
  const asSeconds = Math.round(expiresIn * 1_000)
  if (asSeconds >= MIN_LIFETIME_MS && asSeconds <= MAX_LIFETIME_MS) return asSeconds
  const asMs = Math.round(expiresIn)
  if (asSeconds > MAX_LIFETIME_MS && asMs <= MAX_LIFETIME_MS) return asMs
  throw new Error(`Token response expires_in ${expiresIn} is outside 1 s to 30 days in seconds or milliseconds`)
}

type RefreshGrant = Pick<TokenSet, 'refreshToken' | 'refreshIssuedAt' | 'refreshExpiresAt'>

/**
 * A refresh token's issue time and expiry come from its IMS claims when they
 * are believable (created_at not in the future beyond skew, not older than any
 * refresh token lives), else issue time is now and expiry unknown. Both stay
 * in the issuer's clock: they only inform "sign in again soon" decisions.
 */
function newRefreshGrant (refreshToken: string, now: number): RefreshGrant {
  const { createdAt, expiresIn } = imsClaims(refreshToken)
  if (createdAt === undefined || createdAt > now + MAX_TRUSTED_TOKEN_AGE_MS || createdAt < now - MAX_REFRESH_LIFETIME_MS) {
    return { refreshToken, refreshIssuedAt: now }
  }
  const grant: RefreshGrant = { refreshToken, refreshIssuedAt: Math.min(createdAt, now) }
  if (expiresIn !== undefined && expiresIn >= MIN_LIFETIME_MS && expiresIn <= MAX_REFRESH_LIFETIME_MS) {
    grant.refreshExpiresAt = createdAt + expiresIn
  }
  return grant
}

interface ImsClaims { createdAt?: number | undefined, expiresIn?: number | undefined }

/** IMS tokens are JWTs carrying created_at/expires_in in ms; opaque tokens simply have none. */
function imsClaims (token: string): ImsClaims {
  let payload: Record<string, unknown>
  try {
    // Unverified on purpose: these are our own tokens, read only for timing, never for identity.
    payload = decodeJwt(token)
  } catch {
    return {}
  }
  return { createdAt: msClaim(payload.created_at), expiresIn: msClaim(payload.expires_in) }
}

function msClaim (value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value
  if (typeof value === 'string' && /^\d{1,16}$/.test(value)) return Number(value)
  return undefined
}

function optionalString (fields: Record<string, unknown>, name: string): string | undefined {
  const value = fields[name]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw new Error(`Token response field ${name} is not a string`)
  return value
}

function optionalNumber (fields: Record<string, unknown>, name: string): number | undefined {
  const value = fields[name]
  if (value === undefined || value === null) return undefined
  if (typeof value === 'number' && Number.isFinite(value)) return value
  if (typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value)
  throw new Error(`Token response field ${name} is not a number`)
}

/** Strictly more than `marginMs` left: a token exactly at the margin is refreshed. */
export function isAccessTokenFresh (set: TokenSet, now: number, marginMs: number): boolean {
  return set.accessExpiresAt - now > marginMs
}

export function isAccessTokenExpired (set: TokenSet, now: number): boolean {
  return now >= set.accessExpiresAt
}

/** How long the current refresh token has existed, or undefined when unknown (none held). */
export function refreshTokenAge (set: TokenSet, now: number): number | undefined {
  return set.refreshIssuedAt === undefined ? undefined : now - set.refreshIssuedAt
}

/** True only when the refresh token's own claims say it has expired; unknown is not expired. */
export function isRefreshTokenExpired (set: TokenSet, now: number): boolean {
  return set.refreshExpiresAt !== undefined && now >= set.refreshExpiresAt
}

/**
 * Checks a decrypted store record before anything trusts it: a record from an
 * older version or a damaged one is rejected here (the user signs in again)
 * instead of failing later in an odd place. Optional fields must be absent,
 * not null, so that `!== undefined` checks elsewhere stay true to the type.
 */
export function isTokenSet (value: unknown): value is TokenSet {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const v = value as Record<string, unknown>
  return nonEmptyString(v.userId) &&
    nonEmptyString(v.accessToken) &&
    nonEmptyString(v.tokenType) &&
    finite(v.accessExpiresAt) &&
    finite(v.receivedAt) &&
    (v.refreshToken === undefined || nonEmptyString(v.refreshToken)) &&
    (v.scope === undefined || typeof v.scope === 'string') &&
    (v.refreshIssuedAt === undefined || finite(v.refreshIssuedAt)) &&
    (v.refreshExpiresAt === undefined || finite(v.refreshExpiresAt)) &&
    (v.renewalCheckedAt === undefined || finite(v.renewalCheckedAt)) &&
    (v.signIns === undefined || (Array.isArray(v.signIns) && v.signIns.every(isSignInEntry))) &&
    (v.retiredGrants === undefined || (Array.isArray(v.retiredGrants) && v.retiredGrants.every(isRetiredGrant))) &&
    (v.refreshing === undefined || isRefreshIntent(v.refreshing))
}

function isRefreshIntent (value: unknown): value is RefreshIntent {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return nonEmptyString(v.id) && finite(v.at)
}

function isSignInEntry (value: unknown): value is SignInEntry {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return nonEmptyString(v.id) && nonEmptyString(v.sessionKey) && finite(v.createdAt)
}

function isRetiredGrant (value: unknown): value is RetiredGrant {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return nonEmptyString(v.refreshToken) && finite(v.expiresAt)
}

function nonEmptyString (value: unknown): value is string {
  return typeof value === 'string' && value !== ''
}

function finite (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/**
 * Makes token sets shaped like IMS's: access and refresh tokens are JWTs whose
 * payload carries `created_at` and `expires_in` as millisecond strings (what
 * Adobe's own library reads), the id_token is a standard OIDC one in seconds.
 */
import { randomUUID } from 'node:crypto'
import type { Signer } from './keys.js'
import type { Grant, Ledger } from './ledger.js'
import type { MockImsSettings } from './settings.js'
import type { MockImsUser } from './types.js'

export interface MintContext {
  settings: MockImsSettings
  ledger: Ledger
  signer: Signer
  issuer: string
  /** The `iss` put in id_tokens: the issuer, or (idTokenIssuer 'host/ims') the issuer + '/ims'. */
  idTokenIssuer: string
}

export interface TokenResponse {
  /** IMS sends the user id beside the tokens on a code exchange. */
  sub?: string
  access_token: string
  refresh_token?: string
  id_token?: string
  token_type: 'bearer'
  expires_in: number
}

export interface MintRequest {
  scopes: string[]
  withRefreshToken: boolean
  withIdToken: boolean
  nonce?: string
}

export async function mintTokens (ctx: MintContext, grant: Grant, request: MintRequest): Promise<TokenResponse> {
  const { settings, ledger } = ctx
  const now = settings.now()
  const accessMs = Math.round(settings.accessTokenLifetimeSeconds * 1000)
  const accessToken = await imsJwt(ctx, grant, request.scopes, 'access_token', now, accessMs)
  ledger.addToken({ token: accessToken, kind: 'access', grant, scopes: request.scopes, expiresAt: now + accessMs, revoked: false })
  const response: TokenResponse = {
    access_token: accessToken,
    token_type: 'bearer',
    expires_in: settings.expiresInUnit === 'milliseconds' ? accessMs : settings.accessTokenLifetimeSeconds
  }

  if (request.withRefreshToken) {
    const refreshExpiresAt = refreshExpiry(settings, grant, now)
    const refreshToken = await imsJwt(ctx, grant, request.scopes, 'refresh_token', now, refreshExpiresAt - now)
    ledger.addToken({ token: refreshToken, kind: 'refresh', grant, scopes: request.scopes, expiresAt: refreshExpiresAt, revoked: false })
    response.refresh_token = refreshToken
  }

  if (request.withIdToken) {
    const idToken = await idTokenFor(ctx, grant, now, request.nonce)
    ledger.addSecret(idToken)
    response.id_token = idToken
  }
  return response
}

function refreshExpiry (settings: MockImsSettings, grant: Grant, now: number): number {
  const sliding = now + Math.round(settings.refreshTokenLifetimeSeconds * 1000)
  if (settings.refreshTokenExpiry === 'sliding') return sliding
  grant.firstRefreshExpiresAt ??= sliding
  return grant.firstRefreshExpiresAt
}

async function imsJwt (ctx: MintContext, grant: Grant, scopes: string[], type: string, now: number, lifetimeMs: number): Promise<string> {
  // IMS signs these with a key it does not publish in /ims/keys: nobody verifies them locally.
  return await ctx.signer.signUnpublished({
    id: `${now}-${randomUUID()}`,
    type,
    client_id: grant.clientId,
    user_id: grant.user.sub,
    as: 'ims-na1',
    created_at: String(now),
    expires_in: String(lifetimeMs),
    // IMS joins scopes with commas inside its tokens.
    scope: scopes.join(',')
  })
}

async function idTokenFor (ctx: MintContext, grant: Grant, now: number, nonce: string | undefined): Promise<string> {
  const iat = Math.floor(now / 1000)
  // IMS's header carries x5u as a bare file name beside the kid: a verifier must look up the kid only.
  return await ctx.signer.sign({
    ...userClaims(grant.user, { profile: true, email: true }),
    iss: ctx.idTokenIssuer,
    aud: grant.clientId,
    iat,
    exp: iat + Math.ceil(ctx.settings.accessTokenLifetimeSeconds),
    ...(nonce === undefined ? {} : { nonce })
  })
}

/** OIDC standard claims of a user; userinfo releases profile and email only with those scopes. */
export function userClaims (user: MockImsUser, release: { profile: boolean, email: boolean }): Record<string, string | boolean> {
  const claims: Record<string, string | boolean> = { sub: user.sub }
  if (release.profile) {
    if (user.name !== undefined) claims['name'] = user.name
    if (user.givenName !== undefined) claims['given_name'] = user.givenName
    if (user.familyName !== undefined) claims['family_name'] = user.familyName
  }
  if (release.email && user.email !== undefined) {
    claims['email'] = user.email
    claims['email_verified'] = true
  }
  return claims
}

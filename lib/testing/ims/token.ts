/**
 * The token endpoint: code exchange and refresh, with every check IMS (or the
 * OAuth RFCs, where IMS is silent) makes, each failing with its own message.
 */
import { createHash } from 'node:crypto'
import { PKCE_VALUE, parseScopes } from './authorize.js'
import { authenticatedForm } from './client-auth.js'
import type { ImsContext, ImsRequest } from './context.js'
import { sendJson, sendOAuthError } from '../shared/http.js'
import type { CodeRecord, Grant } from './ledger.js'
import { mintTokens } from './mint.js'
import type { MockImsClient } from './types.js'

export async function handleToken (ctx: ImsContext, request: ImsRequest): Promise<void> {
  const checked = authenticatedForm(ctx, request)
  if (!checked) return
  const { form, client } = checked
  const { res } = request

  const grantType = form.get('grant_type')
  if (grantType === 'authorization_code') return await exchangeCode(ctx, request, form, client)
  if (grantType === 'refresh_token') return await refresh(ctx, request, form, client)
  if (grantType === null) return sendOAuthError(res, 400, 'invalid_request', 'grant_type is required')
  sendOAuthError(res, 400, 'unsupported_grant_type', `unsupported grant_type: ${grantType}`)
}

async function exchangeCode (ctx: ImsContext, { res }: ImsRequest, form: URLSearchParams, client: MockImsClient): Promise<void> {
  const code = form.get('code')
  if (code === null) return sendOAuthError(res, 400, 'invalid_request', 'code is required')
  const taken = ctx.ledger.takeCode(code)
  if (!taken) return sendOAuthError(res, 400, ctx.settings.unknownCodeError, 'unknown authorization code')
  const { record, wasUsed } = taken
  if (wasUsed) {
    if (record.grant && ctx.settings.revokeOnCodeReplay) record.grant.revoked = true
    return sendOAuthError(res, 400, 'invalid_grant', 'authorization code already used')
  }
  const problem = codeProblem(ctx, record, form, client)
  if (problem !== undefined) return sendOAuthError(res, 400, 'invalid_grant', problem)

  const grant: Grant = { user: record.user, clientId: client.clientId, scopes: record.scopes, revoked: false }
  ctx.ledger.addGrant(grant)
  record.grant = grant
  const tokens = await mintTokens(ctx, grant, {
    scopes: record.scopes,
    // IMS hands out refresh tokens only for offline_access.
    withRefreshToken: record.scopes.includes('offline_access'),
    withIdToken: record.scopes.includes('openid'),
    ...(record.nonce === undefined ? {} : { nonce: record.nonce })
  })
  sendJson(res, 200, ctx.settings.flavor === 'ims' ? { ...tokens, sub: grant.user.sub } : tokens)
}

function codeProblem (ctx: ImsContext, record: CodeRecord, form: URLSearchParams, client: MockImsClient): string | undefined {
  if (ctx.settings.now() >= record.expiresAt) return 'authorization code expired'
  if (record.clientId !== client.clientId) return 'authorization code was issued to another client'
  const redirectUri = form.get('redirect_uri')
  // RFC 6749 §4.1.3: required when authorize had one, and identical.
  if (record.redirectUriGiven && redirectUri === null) return 'redirect_uri is required: it was sent to authorize'
  if (redirectUri !== null && redirectUri !== record.redirectUri) return 'redirect_uri does not match the authorization request'
  return verifierProblem(record, form.get('code_verifier'))
}

function verifierProblem (record: CodeRecord, verifier: string | null): string | undefined {
  // A verifier without a bound challenge is refused too: it points at a PKCE downgrade.
  if (record.challenge === undefined) return verifier === null ? undefined : 'code_verifier sent, but authorize had no code_challenge'
  if (verifier === null) return 'code_verifier is required'
  if (!PKCE_VALUE.test(verifier)) return 'code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~'
  const derived = record.challengeMethod === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier
  return derived === record.challenge ? undefined : 'code_verifier does not match code_challenge'
}

async function refresh (ctx: ImsContext, { res }: ImsRequest, form: URLSearchParams, client: MockImsClient): Promise<void> {
  const token = form.get('refresh_token')
  if (token === null) return sendOAuthError(res, 400, 'invalid_request', 'refresh_token is required')
  const live = ctx.ledger.live(token, 'refresh')
  if (!live) return sendOAuthError(res, 400, 'invalid_grant', 'refresh token is invalid, expired or revoked')
  if (live.grant.clientId !== client.clientId) return sendOAuthError(res, 400, 'invalid_grant', 'refresh token was issued to another client')

  // RFC 6749 §6: a refresh may narrow the scopes, never widen them.
  const asked = form.get('scope')
  const scopes = asked === null ? live.record.scopes : parseScopes(asked)
  const extra = scopes.find((scope) => !live.record.scopes.includes(scope))
  if (extra !== undefined || scopes.length === 0) return sendOAuthError(res, 400, 'invalid_scope', 'a refresh may only narrow the granted scopes')

  const { settings } = ctx
  const withRefreshToken = !settings.omitRefreshTokenOnRefresh
  // Rotation happens before anything is awaited, so a concurrent refresh with the same token loses.
  if (withRefreshToken && settings.rotateRefreshTokens) live.record.revoked = true
  const tokens = await mintTokens(ctx, live.grant, {
    scopes,
    withRefreshToken,
    withIdToken: !settings.omitIdTokenOnRefresh && scopes.includes('openid')
  })
  sendJson(res, 200, tokens)
}

/**
 * The userinfo endpoint: a bearer access token in, the user's claims out.
 * `sub` always; profile and email claims only with those scopes, as IMS.
 */
import type { ImsContext, ImsRequest } from './context.js'
import { sendJson, sendOAuthError } from '../shared/http.js'
import { userClaims } from './mint.js'

export function handleUserinfo (ctx: ImsContext, { req, res }: ImsRequest): void {
  const token = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1]
  if (token === undefined) {
    // RFC 6750 §3.1: a request with no credentials gets a challenge without an error code.
    return sendOAuthError(res, 401, 'invalid_token', 'a bearer access token is required', { 'WWW-Authenticate': 'Bearer realm="ims"' })
  }
  const live = ctx.ledger.live(token, 'access')
  if (!live) {
    return sendOAuthError(res, 401, 'invalid_token', 'the access token is invalid, expired or revoked',
      { 'WWW-Authenticate': 'Bearer realm="ims", error="invalid_token"' })
  }
  const { scopes } = live.record
  if (!scopes.includes('openid')) {
    return sendOAuthError(res, 403, 'insufficient_scope', 'userinfo needs the openid scope',
      { 'WWW-Authenticate': 'Bearer realm="ims", error="insufficient_scope", scope="openid"' })
  }
  sendJson(res, 200, userClaims(live.grant.user, { profile: scopes.includes('profile'), email: scopes.includes('email') }))
}

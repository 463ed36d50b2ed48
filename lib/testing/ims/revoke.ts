/**
 * Ending things: token revocation (RFC 7009, back channel) and logout (IMS's
 * front-channel redirect).
 */
import { authenticatedForm } from './client-auth.js'
import type { ImsContext, ImsRequest } from './context.js'
import { redirect, sendEmpty, sendHtml, sendOAuthError } from '../shared/http.js'
import { messagePage } from './pages.js'
import { isHttpUrl } from './settings.js'

export function handleRevoke (ctx: ImsContext, request: ImsRequest): void {
  const checked = authenticatedForm(ctx, request)
  if (!checked) return
  const token = checked.form.get('token')
  if (token === null) return sendOAuthError(request.res, 400, 'invalid_request', 'token is required')
  ctx.ledger.revokeToken(token, checked.client.clientId, ctx.settings.revocationScope)
  // RFC 7009 §2.2: unknown tokens get the same 200, so revocation tells nothing.
  sendEmpty(request.res, 200)
}

/**
 * Ends the browser's IMS session (which the mock does not keep) and sends it
 * back. Tokens are left alone: that is what revoke is for. The return address
 * must share an origin with one of the client's redirect URIs, when it has any.
 */
export function handleLogout (ctx: ImsContext, { query, res }: ImsRequest): void {
  const client = ctx.settings.clients.find((candidate) => candidate.clientId === query.get('client_id'))
  if (!client) return sendHtml(res, 400, messagePage('Invalid request', 'missing or unknown client_id'))
  // `post_logout_redirect_uri` is the OpenID name, which the generic flavor's clients send.
  const target = query.get('redirect_uri') ?? query.get('post_logout_redirect_uri')
  if (target === null) return sendHtml(res, 200, messagePage('Signed out', 'You are signed out of Adobe ID (mock).'))
  if (!isHttpUrl(target)) return sendHtml(res, 400, messagePage('Invalid request', 'redirect_uri must be an absolute http(s) URL'))
  const origin = new URL(target).origin
  if (client.redirectUris && !client.redirectUris.some((uri) => new URL(uri).origin === origin)) {
    return sendHtml(res, 400, messagePage('Invalid request', 'redirect_uri is not allowed for this client'))
  }
  redirect(res, target)
}

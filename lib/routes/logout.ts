import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PluginContext } from '../context.js'
import { LightroomAuthError } from '../errors.js'
import { requestedReturnTo } from './flow-state.js'
import { sendAuthError } from './replies.js'

/**
 * A cross-site page cannot make a browser POST here with our cookie and a foreign Origin unnoticed:
 * browsers send Origin (or Sec-Fetch-Site) on every cross-origin POST. Clients that send neither
 * (curl, server-to-server) are not browsers and carry no ambient cookie to abuse.
 */
function crossSite (request: FastifyRequest, allowed: Set<string>): boolean {
  const origin = request.headers.origin
  if (typeof origin === 'string') return !allowed.has(origin)
  return request.headers['sec-fetch-site'] === 'cross-site'
}

/**
 * The provider's front-channel sign-out, which ends the browser's session at Adobe too and sends it
 * back to returnTo. No token goes in this URL: it would sit in browser history and IMS's logs.
 */
function providerSignOutUrl (ctx: PluginContext, returnTo: string): string {
  const { provider, options } = ctx
  const url = new URL(provider.endSessionEndpoint ?? new URL('/ims/logout/v1', provider.issuer).href)
  url.searchParams.set('client_id', options.clientId)
  // IMS names it redirect_uri; OpenID RP-Initiated Logout, post_logout_redirect_uri.
  url.searchParams.set(provider.isIms ? 'redirect_uri' : 'post_logout_redirect_uri', new URL(returnTo, options.redirectUrl.origin).href)
  return url.href
}

/** POST {prefix}/logout: revokes the user's grants at IMS (best effort), deletes tokens and sessions, clears the cookie. */
export function logoutHandler (ctx: PluginContext) {
  const allowed = new Set([ctx.options.redirectUrl.origin, ...ctx.options.allowedOrigins])
  return async function logout (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (crossSite(request, allowed)) {
      return sendAuthError(request, reply, new LightroomAuthError('LR_BAD_ORIGIN', 403, 'Sign-out must come from this site'), ctx.loginPath())
    }
    // Only a session of a sign-in the user's record still lists may sign the user out everywhere:
    // a stale one (from before a sign-out, or evicted) ends itself and touches no current grant.
    const current = await ctx.currentUser.resolve(request)
    if (current !== undefined) {
      await ctx.tokens.signOut(current.session.userId, request.log)
    }
    await ctx.currentUser.endSession(request, reply)
    // ?returnTo= as on login: only a same-origin relative path, else the default.
    const returnTo = requestedReturnTo(request, '/')
    const target = ctx.options.signOutAtIms ? providerSignOutUrl(ctx, returnTo) : returnTo
    return reply.header('cache-control', 'no-store').redirect(target, 303)
  }
}

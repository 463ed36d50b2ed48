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
    await ctx.sessions.destroy(request, reply)
    // ?returnTo= as on login: only a same-origin relative path, else the default.
    return reply.header('cache-control', 'no-store').redirect(requestedReturnTo(request, '/'), 303)
  }
}

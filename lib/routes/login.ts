import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PluginContext } from '../context.js'

/** GET {prefix}/login?returnTo=/path: sends the browser to IMS with state and a PKCE S256 challenge. */
export function loginHandler (ctx: PluginContext) {
  return async function login (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const url = await ctx.authorizationUrl(request, reply)
    return reply.header('cache-control', 'no-store').redirect(url, 302)
  }
}

import type { FastifyReply, FastifyRequest } from 'fastify'

/** Builds the IMS authorize URL and sets the flow cookies (state, PKCE verifier): @fastify/oauth2. */
export type AuthorizationUrl = (request: FastifyRequest, reply: FastifyReply) => Promise<string>

/** GET {prefix}/login?returnTo=/path: sends the browser to IMS with state and a PKCE S256 challenge. */
export function loginHandler (authorizationUrl: AuthorizationUrl) {
  return async function login (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const url = await authorizationUrl(request, reply)
    return reply.header('cache-control', 'no-store').redirect(url, 302)
  }
}

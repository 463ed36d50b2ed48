import type { FastifyReply, FastifyRequest } from 'fastify'
import { ErrorCodes, LightroomAuthError } from '../errors.js'
import type { FlowRecords } from './flow-record.js'

/** Builds the IMS authorize URL and sets the flow cookies (state, PKCE verifier): @fastify/oauth2. */
export type AuthorizationUrl = (request: FastifyRequest, reply: FastifyReply) => Promise<string>

/** OpenID's prompt values that IMS documents or accepts; anything else is refused, not forwarded. */
const PROMPTS = new Set(['none', 'login', 'consent', 'select_account'])
/** An email address or an IMS user id: nothing that could smuggle another parameter in. */
const LOGIN_HINT = /^[A-Za-z0-9._%+@-]{1,254}$/

function badRequest (message: string): LightroomAuthError {
  return new LightroomAuthError(ErrorCodes.BAD_REQUEST, 400, message)
}

/** `?prompt=` and `?login_hint=` passed through to IMS, allow-listed. */
export function passThroughParams (query: unknown): Record<string, string> {
  const { prompt, login_hint: loginHint } = (query ?? {}) as Record<string, unknown>
  const params: Record<string, string> = {}
  if (prompt !== undefined) {
    if (typeof prompt !== 'string' || !PROMPTS.has(prompt)) throw badRequest('prompt must be one of none, login, consent, select_account')
    params.prompt = prompt
  }
  if (loginHint !== undefined) {
    if (typeof loginHint !== 'string' || !LOGIN_HINT.test(loginHint)) throw badRequest('login_hint must be an email address or an IMS user id')
    params.login_hint = loginHint
  }
  return params
}

/**
 * GET {prefix}/login?returnTo=/path[&prompt=none][&login_hint=...]: sends the browser to IMS with
 * state, a PKCE S256 challenge and a nonce, after storing the flow's server-side record.
 */
export function loginHandler (authorizationUrl: AuthorizationUrl, flows: FlowRecords) {
  return async function login (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const extra = passThroughParams(request.query)
    const url = new URL(await authorizationUrl(request, reply))
    const flow = await flows.start(url.searchParams.get('state') ?? '')
    url.searchParams.set('nonce', flow.nonce)
    for (const [name, value] of Object.entries(extra)) url.searchParams.set(name, value)
    return reply.header('cache-control', 'no-store').redirect(url.href, 302)
  }
}

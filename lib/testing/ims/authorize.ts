/**
 * The authorization endpoint. OAuth's one hard rule shapes it: while the client
 * or its redirect URI is in doubt, nothing may be redirected (a 400 page
 * instead); once both are known good, every error goes back on the redirect.
 */
import { randomBytes } from 'node:crypto'
import type { ImsContext, ImsRequest } from './context.js'
import { redirect, repeatedParam, sendHtml } from '../shared/http.js'
import { consentPage, messagePage } from './pages.js'
import { isHttpUrl } from './settings.js'
import type { MockImsClient, MockImsUser } from './types.js'

/** IMS documents state values up to this length. */
const MAX_STATE = 4096
/** RFC 7636 §4.1: 43 to 128 unreserved characters (challenges use the same alphabet). */
export const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/

interface Target {
  params: URLSearchParams
  client: MockImsClient
  redirectUri: string
  /** Whether redirect_uri was sent (then the token request must repeat it). */
  redirectUriGiven: boolean
  /** The state to echo: the one sent, unless it was too long to be valid. */
  state: string | undefined
}

export async function handleAuthorize (ctx: ImsContext, request: ImsRequest): Promise<void> {
  const target = resolveTarget(ctx, request)
  if (!target) return
  const { params } = target
  const fail = (error: string, description: string): void => redirectBack(request, target, { error, error_description: description })

  const repeated = repeatedParam(params)
  if (repeated !== undefined) return fail('invalid_request', `${repeated} is repeated`)
  if ((params.get('state') ?? '').length > MAX_STATE) return fail('invalid_request', `state is longer than ${MAX_STATE} characters`)
  const responseType = params.get('response_type')
  if (responseType === null) return fail('invalid_request', 'response_type is required')
  if (responseType !== 'code') return fail('unsupported_response_type', 'only response_type=code is supported')

  const scopes = parseScopes(params.get('scope'))
  if (scopes.length === 0) return fail('invalid_scope', 'scope is required')
  const unknown = scopes.find((scope) => !ctx.settings.knownScopes.includes(scope))
  if (unknown !== undefined) return fail('invalid_scope', `unknown scope: ${unknown}`)

  const pkce = readPkce(params, ctx.settings.requirePkce)
  if (typeof pkce === 'string') return fail('invalid_request', pkce)

  if (ctx.settings.consent) {
    const decision = request.method === 'POST' ? params.get('decision') : null
    if (decision === 'deny') return fail('access_denied', 'the user denied access')
    if (decision !== 'allow') {
      // prompt=none forbids showing a page, and this mock remembers no earlier consent.
      if (params.get('prompt') === 'none') return fail('consent_required', 'the user has not consented yet')
      return sendHtml(request.res, 200, consentPage(ctx.paths.authorize, params, target.client.clientId, scopes))
    }
  }

  const code = randomBytes(32).toString('base64url')
  const nonce = params.get('nonce')
  ctx.ledger.addCode({
    code,
    clientId: target.client.clientId,
    redirectUri: target.redirectUri,
    redirectUriGiven: target.redirectUriGiven,
    ...pkce,
    scopes,
    user: pickUser(ctx, params.get('login_hint')),
    ...(nonce === null ? {} : { nonce }),
    expiresAt: ctx.settings.now() + Math.round(ctx.settings.codeLifetimeSeconds * 1000),
    used: false
  })
  redirectBack(request, target, { code })
}

/** A queued `oauthError` fault: goes back on the redirect like any authorize error. */
export function authorizeFault (ctx: ImsContext, request: ImsRequest, error: string, description: string | undefined): void {
  const target = resolveTarget(ctx, request)
  if (!target) return
  redirectBack(request, target, description === undefined ? { error } : { error, error_description: description })
}

/** The client and redirect URI, or undefined after answering the 400 page that must not redirect. */
function resolveTarget (ctx: ImsContext, request: ImsRequest): Target | undefined {
  const params = request.method === 'POST' ? request.form : request.query
  const refuse = (message: string): undefined => {
    sendHtml(request.res, 400, messagePage('Invalid request', message))
    return undefined
  }
  if (!params) return refuse('the authorization request must be a query, or a form post')

  const clientIds = params.getAll('client_id')
  const client = ctx.settings.clients.find((candidate) => candidate.clientId === clientIds[0])
  if (clientIds.length !== 1 || !client) return refuse('missing, repeated or unknown client_id')

  const uris = params.getAll('redirect_uri')
  const given = uris[0]
  if (uris.length > 1) return refuse('redirect_uri is repeated')
  const redirectUri = given ?? client.redirectUris?.[0]
  if (redirectUri === undefined) return refuse('redirect_uri is required')
  if (!isHttpUrl(redirectUri)) return refuse('redirect_uri must be an absolute http(s) URL')
  if (client.redirectUris && !client.redirectUris.includes(redirectUri)) {
    return refuse('redirect_uri is not registered for this client')
  }

  const state = params.get('state') ?? undefined
  return {
    params,
    client,
    redirectUri,
    redirectUriGiven: given !== undefined,
    state: state !== undefined && state.length <= MAX_STATE ? state : undefined
  }
}

function redirectBack (request: ImsRequest, target: Target, values: Record<string, string>): void {
  const url = new URL(target.redirectUri)
  for (const [name, value] of Object.entries(values)) url.searchParams.set(name, value)
  if (target.state !== undefined) url.searchParams.set('state', target.state)
  redirect(request.res, url.href)
}

/** IMS accepts scopes separated by spaces or by commas. */
export function parseScopes (value: string | null): string[] {
  return [...new Set((value ?? '').split(/[\s,]+/).filter((scope) => scope !== ''))]
}

function readPkce (params: URLSearchParams, required: boolean): { challenge?: string, challengeMethod?: 'S256' | 'plain' } | string {
  const challenge = params.get('code_challenge')
  const method = params.get('code_challenge_method')
  if (challenge === null) {
    if (method !== null) return 'code_challenge_method was sent without code_challenge'
    return required ? 'code_challenge is required' : {}
  }
  if (!PKCE_VALUE.test(challenge)) return 'code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~'
  // IMS takes an omitted method as plain, as RFC 7636 does.
  const challengeMethod = method ?? 'plain'
  if (challengeMethod !== 'S256' && challengeMethod !== 'plain') return `unsupported code_challenge_method: ${challengeMethod}`
  return { challenge, challengeMethod }
}

function pickUser (ctx: ImsContext, hint: string | null): MockImsUser {
  const hinted = ctx.settings.users.find((user) => hint !== null && (user.sub === hint || user.email === hint))
  return hinted ?? ctx.currentUser()
}

import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PluginContext } from '../context.js'
import { ErrorCodes, ImsError, LightroomAuthError, type LightroomAuthErrorCode } from '../errors.js'
import { returnToFromState, statesMatch } from './flow-state.js'
import { sendAuthError } from './replies.js'
import { parseTokenResponse } from '../auth/token-set.js'

// Errors IMS sends back on the redirect, each with its own code: the user said no, must sign in
// or consent first (prompt=none), or the app asked for scopes it may not have.
const PROVIDER_ERRORS: Record<string, [LightroomAuthErrorCode, number, string]> = {
  access_denied: [ErrorCodes.ACCESS_DENIED, 401, 'Sign-in was not completed at Adobe (access_denied)'],
  login_required: [ErrorCodes.IMS_LOGIN_REQUIRED, 401, 'You are not signed in at Adobe (login_required); sign in without prompt=none'],
  consent_required: [ErrorCodes.CONSENT_REQUIRED, 401, 'This app needs your consent at Adobe first (consent_required)'],
  interaction_required: [ErrorCodes.INTERACTION_REQUIRED, 401, 'Adobe needs you to complete the sign-in yourself (interaction_required)'],
  invalid_scope: [ErrorCodes.INVALID_SCOPE, 400, 'Adobe refused the scopes this app asked for (invalid_scope)']
}

function providerError (value: unknown): LightroomAuthError {
  // Only a recognisable OAuth error code is echoed; error_description is attacker-controllable.
  const code = typeof value === 'string' && /^[a-z_]{1,64}$/.test(value) ? value : 'unknown_error'
  const known = PROVIDER_ERRORS[code]
  if (known !== undefined) return new LightroomAuthError(...known)
  return new LightroomAuthError('LR_IMS_ERROR', 400, `Adobe refused the sign-in request (${code})`)
}

function exchangeError (error: unknown): LightroomAuthError {
  // Any 4xx is IMS refusing this code (a bogus one has been seen to answer access_denied, not
  // invalid_grant): a failed sign-in for the user to start again, never a gateway error.
  if (error instanceof ImsError && ((error.status !== undefined && error.status >= 400 && error.status < 500) || !error.transient)) {
    return new LightroomAuthError('LR_IMS_ERROR', 400, `Adobe rejected the sign-in code (${error.error}); please sign in again`, { cause: error })
  }
  return new LightroomAuthError('LR_IMS_UNAVAILABLE', 502, 'Adobe IMS could not be reached to complete the sign-in; please try again', { cause: error })
}

/**
 * GET {prefix}/callback: checks, in this order and before any call to IMS, the provider's error,
 * the state (constant-time, against the cookie set at login), the PKCE verifier cookie and the
 * flow's server-side record (consumed); then exchanges the code, verifies the id_token (nonce
 * included), stores the tokens and starts a fresh session bound to this sign-in.
 */
export function callbackHandler (ctx: PluginContext) {
  return async function callback (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const query = (request.query ?? {}) as Record<string, unknown>
    const stateCookie = request.cookies[ctx.flowCookies.state]
    const verifier = request.cookies[ctx.flowCookies.verifier]
    // Single use: whatever happens next, this flow's cookies are spent.
    reply.clearCookie(ctx.flowCookies.state, ctx.flowCookies.options)
    reply.clearCookie(ctx.flowCookies.verifier, ctx.flowCookies.options)
    // This URL carries the code: nothing the answer links to may learn it from a Referer.
    reply.header('referrer-policy', 'no-referrer')
    const fail = (error: LightroomAuthError): FastifyReply => sendAuthError(request, reply, error, ctx.loginPath())

    if (query.error !== undefined) return fail(providerError(query.error))
    if (stateCookie === undefined && typeof query.state === 'string') {
      // IMS came back with a state but the browser sent no flow cookie to this host: most often the
      // sign-in started at another address (127.0.0.1 vs localhost), whose cookies stay there.
      const start = `${ctx.options.redirectUrl.origin}${ctx.loginPath()}`
      return fail(new LightroomAuthError('LR_BAD_STATE', 400, `The sign-in cookie did not come back to ${ctx.options.redirectUrl.host}. If you started signing in at another address (127.0.0.1 and localhost are different sites to a browser), start again at ${start}; otherwise this browser may block cookies`))
    }
    if (!statesMatch(query.state, stateCookie)) {
      return fail(new LightroomAuthError('LR_BAD_STATE', 400, 'This sign-in link is invalid or was already used; please start again'))
    }
    if (typeof query.code !== 'string' || query.code.length === 0 || query.code.length > 4096) {
      return fail(new LightroomAuthError('LR_BAD_STATE', 400, 'The sign-in response carried no code; please start again'))
    }
    if (verifier === undefined || !/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) {
      return fail(new LightroomAuthError('LR_BAD_STATE', 400, 'The sign-in cookie is missing (cookies blocked, or another tab finished first); please start again'))
    }
    // Single use server side too: a replayed cookie pair gets no second code exchange.
    const flow = await ctx.flows.consume(query.state as string)
    if (flow === undefined) {
      return fail(new LightroomAuthError('LR_BAD_STATE', 400, 'This sign-in was already used or has expired; please start again'))
    }

    let body: Record<string, unknown>
    try {
      body = await ctx.ims.exchangeCode(query.code, ctx.options.redirectUri, verifier)
    } catch (error) {
      const ims = error instanceof ImsError ? error : undefined
      request.log.warn({ error: ims?.error ?? 'unknown', status: ims?.status, debugId: ims?.debugId }, 'lightroom-ims: code exchange failed')
      return fail(exchangeError(error))
    }

    let userId: string
    try {
      const idToken = body.id_token
      if (typeof idToken === 'string') {
        userId = (await ctx.idTokens.verify(idToken, { nonce: flow.nonce })).sub
        // IMS also names the user beside the tokens: it must be the same one.
        if (body.sub !== undefined && body.sub !== userId) throw new LightroomAuthError('LR_INVALID_ID_TOKEN', 502, 'The token response names another user than its identity token')
      } else if (!ctx.options.scopes.includes('openid')) {
        // Without openid there is no id_token; userinfo names the user instead.
        const info = await ctx.ims.userinfo(String(body.access_token))
        if (typeof info.sub !== 'string' || info.sub === '') throw new Error('userinfo has no sub')
        userId = info.sub
      } else {
        throw new LightroomAuthError('LR_INVALID_ID_TOKEN', 502, 'The provider sent no identity token')
      }
    } catch (error) {
      const failure = error instanceof LightroomAuthError ? error : new LightroomAuthError('LR_INVALID_ID_TOKEN', 502, 'The user could not be identified', { cause: error })
      request.log.warn({ code: failure.code, reason: failure.message }, 'lightroom-ims: sign-in identity check failed')
      return fail(failure)
    }

    let tokens
    try {
      tokens = parseTokenResponse(body, { now: ctx.now(), userId })
    } catch (error) {
      request.log.warn({ reason: (error as Error).message }, 'lightroom-ims: unusable token response at sign-in')
      return fail(new LightroomAuthError('LR_IMS_ERROR', 502, 'Adobe sent an unusable token response; please try again', { cause: error }))
    }
    try {
      const session = ctx.sessions.prepare(userId)
      await ctx.tokens.signIn(tokens, { id: session.record.signInId, sessionKey: session.key, createdAt: session.record.createdAt }, request.log)
      await ctx.currentUser.startSession(request, reply, session)
    } catch (error) {
      // The store is down (both throw LR_STORE_UNAVAILABLE): nothing half-done is left behind that matters.
      return fail(error as LightroomAuthError)
    }
    const returnTo = returnToFromState(query.state as string, ctx.options.defaultReturnTo)
    return reply.header('cache-control', 'no-store').redirect(returnTo, 303)
  }
}

/**
 * The sign-in routes (login, callback, logout) in their own encapsulated context: @fastify/oauth2's
 * decorators, the cookie parser and our error handler stay out of the host app.
 */
import fastifyCookie from '@fastify/cookie'
import fastifyOauth2 from '@fastify/oauth2'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { PluginContext } from '../context.js'
import { signInChannel, traced, type SignInContext } from '../diagnostics/channels.js'
import { ErrorCodes, errorBody, LightroomAuthError, LightroomConfigError, REGISTRATION } from '../errors.js'
import { redactedRequestSerializer } from '../http/log-redaction.js'
import { callbackHandler } from './callback.js'
import { createState, requestedReturnTo, statesMatch } from './flow-state.js'
import { loginHandler, type AuthorizationUrl } from './login.js'
import { logoutHandler } from './logout.js'

type OAuth2Namespace = { generateAuthorizationUri: (request: FastifyRequest, reply: FastifyReply) => Promise<string> }

export function authRoutes (ctx: PluginContext) {
  const { options, provider, flowCookies } = ctx
  return async function routes (child: FastifyInstance): Promise<void> {
    // Cookies are handled only here, around our own routes, unless the host app already registered
    // @fastify/cookie: its parse and onSend hooks would otherwise run on every route of the app.
    // Outside these routes only the session cookie is read, straight from the header.
    if (!child.hasReplyDecorator('setCookie')) await child.register(fastifyCookie)
    const authorize = new URL(provider.authorizationEndpoint)
    const token = new URL(provider.tokenEndpoint)
    await child.register(fastifyOauth2, {
      name: 'lightroomImsOAuth2',
      credentials: {
        client: { id: options.clientId, secret: options.clientSecret },
        auth: {
          authorizeHost: authorize.origin,
          authorizePath: `${authorize.pathname}${authorize.search}`,
          tokenHost: token.origin,
          tokenPath: token.pathname
        }
      },
      scope: options.scopes,
      callbackUri: options.redirectUri,
      pkce: 'S256',
      generateStateFunction: (request: FastifyRequest) => createState(requestedReturnTo(request, options.defaultReturnTo)),
      // @fastify/oauth2 wants the pair; our callback makes this same check itself (routes/callback.ts).
      checkStateFunction: (request: FastifyRequest) => statesMatch((request.query as Record<string, unknown>).state, request.cookies[flowCookies.state]),
      redirectStateCookieName: flowCookies.state,
      verifierCookieName: flowCookies.verifier,
      cookie: flowCookies.options,
      userAgent: false
    })
    const oauth = (child as unknown as Record<string, OAuth2Namespace>).lightroomImsOAuth2!
    const authorizationUrl: AuthorizationUrl = async (request, reply) => await oauth.generateAuthorizationUri(request, reply)

    child.setErrorHandler(function (error: unknown, request, reply) {
      // Our sign-in answers, with our own messages; any other error is logged and answered generically.
      if (error instanceof LightroomAuthError) return reply.code(error.statusCode).send(errorBody(error))
      // Never echo an unexpected error's message: it may quote upstream text.
      request.log.error({ err: { type: (error as Error)?.name, message: (error as Error)?.message } }, 'lightroom-ims: unexpected error in an auth route')
      const status = (error as { statusCode?: number }).statusCode
      if (typeof status === 'number' && status >= 400 && status < 500) return reply.code(status).send(errorBody({ statusCode: status, code: ErrorCodes.BAD_REQUEST, message: 'Invalid request' }))
      return reply.code(500).send(errorBody({ statusCode: 500, code: ErrorCodes.INTERNAL, message: 'Sign-in failed unexpectedly; please try again' }))
    })
    // A sign-out button is a plain HTML form, which posts one of these: logout reads no body, so
    // accept and drop it (bounded) rather than answer 415 when the host app parses no forms.
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data']) {
      if (!child.hasContentTypeParser(type)) {
        child.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: 65_536 }, (_request, _body, done) => { done(null, undefined) })
      }
    }
    // The auth routes need every cookie (state, verifier, session): parse them here when the host
    // app registered @fastify/cookie without its parsing hook.
    child.addHook('onRequest', async (request) => {
      if (request.cookies === null || request.cookies === undefined) {
        request.cookies = typeof request.headers.cookie === 'string' ? child.parseCookie(request.headers.cookie) : {}
      }
    })
    await child.register(async function scoped (routes) {
      // Every request under routePrefix is logged with its query redacted: a code can arrive at a
      // wrong method, a trailing slash or a near-miss path as easily as at the callback.
      routes.setChildLoggerFactory(redactingLoggerFactory(routes.childLoggerFactory))
      // At the root, the 404 handler would be the whole app's: only our own routes are redacted then.
      if (options.routePrefix !== '') routes.setNotFoundHandler(notFound)
      // Routes are global to the app: a second registration at the same paths (in a sibling
      // plugin, say) would meet Fastify's duplicate-route error, which never says why.
      if (routes.hasRoute({ method: 'GET', url: `${routes.prefix}/login` })) {
        throw new LightroomConfigError(REGISTRATION, `cannot add its routes under ${routes.prefix}: another registration of this plugin already has them; give each registration its own routePrefix (or Fastify prefix)`)
      }
      // No automatic HEAD routes: a link checker's HEAD must not start a flow or spend a code.
      const get = { exposeHeadRoute: false }
      routes.get('/login', get, loginHandler(authorizationUrl, ctx.flows))
      const callback = callbackHandler(ctx)
      routes.get('/callback', get, async function tracedCallback (request, reply) {
        if (!signInChannel.hasSubscribers) return await callback(request, reply)
        const context: SignInContext = {}
        return await traced(signInChannel, context, async () => {
          const answer = await callback(request, reply)
          context.statusCode = reply.statusCode
          if (reply.statusCode === 303) context.userId = (await ctx.currentUser.resolve(request))?.session.userId
          return answer
        })
      })
      routes.post('/logout', logoutHandler(ctx))
    }, { prefix: options.routePrefix })
  }
}

function redactingLoggerFactory (inner: FastifyInstance['childLoggerFactory']): FastifyInstance['childLoggerFactory'] {
  return function (this: FastifyInstance, logger, bindings, childOptions, rawRequest) {
    const serializers = { ...childOptions.serializers, req: redactedRequestSerializer }
    return inner.call(this, logger, bindings, { ...childOptions, serializers }, rawRequest)
  }
}

async function notFound (_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  return await reply.code(404).header('referrer-policy', 'no-referrer')
    .send(errorBody({ statusCode: 404, code: ErrorCodes.NOT_FOUND, message: 'Not found' }))
}

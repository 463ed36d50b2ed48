import { randomBytes } from 'node:crypto'
import fastifyCookie from '@fastify/cookie'
import fastifyOauth2 from '@fastify/oauth2'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Agent } from 'undici'
import type { PluginContext } from './context.js'
import { discoverProvider } from './ims/discovery.js'
import { LightroomAuthError, loginRequired } from './errors.js'
import { createState, requestedReturnTo, statesMatch } from './routes/flow-state.js'
import { KEEP_ALIVE_TIMEOUT_MS, MAX_CONNECTIONS_PER_ORIGIN } from './http/request.js'
import { IdTokenVerifier } from './ims/id-token.js'
import { ImsClient } from './ims/client.js'
import { LightroomClient, type LightroomClientOptions } from './lightroom/client.js'
import { resolveOptions, type LightroomImsOptions } from './options.js'
import { callbackHandler } from './routes/callback.js'
import { loginHandler } from './routes/login.js'
import { redactedRequestSerializer } from './http/log-redaction.js'
import { logoutHandler } from './routes/logout.js'
import { SessionManager } from './auth/session.js'
import { encryptedStore } from './store/encrypted.js'
import { memoryBackend } from './store/memory.js'
import { TokenManager, type GetOptions, type RenewReport, type TokenEvents } from './auth/token-manager.js'
import type { TokenSet } from './auth/token-set.js'
import type { SessionRecord } from './auth/session.js'
import type { EventEmitter } from 'node:events'
import type { ProviderMetadata } from './ims/discovery.js'

/** `app.lightroom`: what works without a request. */
export interface LightroomDecorator {
  /** A valid access token for a user, refreshed when needed: for background jobs. */
  tokenFor (userId: string, options?: GetOptions): Promise<string>
  /** preHandler: browsers are sent to sign in (302, with returnTo), API callers get 401 JSON with `loginUrl`. */
  requireLogin (request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** Relative URL of the login route. */
  loginUrl (returnTo?: string): string
  /** Relative URL of the logout route (POST it from a form). */
  logoutUrl (): string
  /** Renews every stored grant whose refresh token is older than `olderThanSeconds` (default: the renewRefreshAfterSeconds option). */
  renewExpiring (options?: { olderThanSeconds?: number }): Promise<RenewReport>
  /** Revokes a user's grant at IMS and deletes their tokens (all their sessions then need a new sign-in). */
  signOut (userId: string): Promise<void>
  /** A Lightroom API client acting for a user (background jobs): tokens from tokenFor, one forced refresh on a 401. */
  api (userId: string): LightroomClient
  /** Rewrites every token and session record under the current (first) encryption key; resumable. Run after adding a key. */
  reencryptAll (): Promise<{ scanned: number, reencrypted: number, failed: number }>
  /** refresh, logout, refreshFailed, signIn: for metrics and audit logs; payloads never contain tokens. */
  readonly events: EventEmitter<TokenEvents>
  /** The validated discovery metadata. */
  readonly provider: Readonly<ProviderMetadata>
}

declare module 'fastify' {
  interface FastifyRequest {
    /** A valid access token for the signed-in user; rejects with LightroomAuthError (401 LR_LOGIN_REQUIRED, 503 LR_IMS_UNAVAILABLE, ...). */
    lightroomToken (options?: GetOptions): Promise<string>
    /** The signed-in IMS user id, or undefined. */
    lightroomUserId (): Promise<string | undefined>
    /** A Lightroom API client for the signed-in user; its calls reject with LR_LOGIN_REQUIRED without a session. */
    lightroomApi (): LightroomClient
    /** When the signed-in user's tokens expire, for display and monitoring (never the tokens); undefined when signed out. Does not refresh. */
    lightroomTokenInfo (): Promise<TokenInfo | undefined>
  }
  interface FastifyInstance {
    lightroom: LightroomDecorator
  }
}

/** What may be shown about a user's tokens: times only. */
export interface TokenInfo {
  userId: string
  /** Epoch ms when the access token expires. */
  accessExpiresAt: number
  /** Epoch ms when the current refresh token was issued, when known. */
  refreshIssuedAt: number | undefined
  /** Epoch ms when the refresh token expires, when the provider says. */
  refreshExpiresAt: number | undefined
  /** Epoch ms when these tokens were received. */
  receivedAt: number
}

const kTokenSet = Symbol('fastify-lightroom-ims.token-set')

interface RequestState {
  [kTokenSet]: TokenSet | null
}

function flowCookieNames (secure: boolean): { state: string, verifier: string } {
  // `__Host-` cookies cannot be planted by a sibling subdomain or a plaintext response: that is what
  // stops an attacker from pre-seeding the state and verifier (login CSRF).
  const prefix = secure ? '__Host-' : ''
  return { state: `${prefix}lr_oauth_state`, verifier: `${prefix}lr_oauth_verifier` }
}

async function lightroomIms (fastify: FastifyInstance, rawOptions: LightroomImsOptions & TestingHooks): Promise<void> {
  const options = resolveOptions(stripTestingHooks(rawOptions))
  const now = rawOptions.now ?? Date.now
  const log = fastify.log

  const dispatcher = new Agent({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, connections: MAX_CONNECTIONS_PER_ORIGIN })
  fastify.addHook('onClose', async () => { await dispatcher.close() })

  let provider: ProviderMetadata
  try {
    provider = await discoverProvider({ discoveryUrl: options.discoveryUrl, issuer: options.issuer, timeoutMs: options.httpTimeoutMs, dispatcher })
  } catch (error) {
    await dispatcher.close()
    throw error
  }

  let store = options.store
  if (store === undefined) {
    log.warn('lightroom-ims: no "store" option: tokens are kept in memory under a random key and vanish on restart; pass encryptedStore(backend, { keys }) in production')
    store = encryptedStore(memoryBackend(), { keys: [{ id: 'ephemeral', key: randomBytes(32) }] })
  }
  if (options.cookieSecretGenerated) {
    log.warn('lightroom-ims: no "cookieSecret" option: sessions are signed with a random secret and end on restart')
  }
  // Registered under a Fastify prefix (app.register(plugin, { prefix: '/api' })), our routes and
  // every URL we hand out live below it.
  const routeBase = `${fastify.prefix}${options.routePrefix}`
  const expectedCallback = `${routeBase}/callback`
  if (options.redirectUrl.pathname !== expectedCallback) {
    log.warn({ redirectPath: options.redirectUrl.pathname, callbackRoute: expectedCallback }, 'lightroom-ims: redirectUri does not point at the callback route; fine behind a rewriting proxy, otherwise sign-in will 404')
  }

  const ims = new ImsClient({
    tokenEndpoint: provider.tokenEndpoint,
    revocationEndpoint: provider.revocationEndpoint,
    userinfoEndpoint: provider.userinfoEndpoint,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    timeoutMs: options.httpTimeoutMs,
    dispatcher,
    ...rawOptions.imsRetry
  })
  const tokens = new TokenManager({
    store,
    ims,
    log,
    now,
    refreshMarginMs: options.refreshMarginMs,
    renewRefreshAfterMs: options.renewRefreshAfterMs,
    sessionMaxAgeMs: options.sessionMaxAgeMs,
    ...rawOptions.refreshLock
  })
  // A client holds configuration only, so one per call is cheap; all share this registration's keep-alive Agent.
  const lightroomApi = (accessToken: LightroomClientOptions['accessToken']): LightroomClient => new LightroomClient({
    baseUrl: options.lightroomBaseUrl,
    apiKey: options.clientId,
    accessToken,
    dispatcher,
    timeoutMs: options.httpTimeoutMs,
    ...rawOptions.lightroomRetry
  })
  const sessions = new SessionManager({ store, secrets: options.cookieSecrets, secure: options.secureCookies, maxAgeMs: options.sessionMaxAgeMs, now })
  const idTokens = new IdTokenVerifier({
    jwksUri: provider.jwksUri,
    issuer: provider.issuer,
    clientId: options.clientId,
    algorithms: provider.idTokenAlgorithms,
    clockToleranceSeconds: options.clockToleranceSeconds,
    timeoutMs: options.httpTimeoutMs,
    dispatcher,
    now
  })
  const loginPath = (returnTo?: string): string => {
    const base = `${routeBase}/login`
    return returnTo === undefined ? base : `${base}?returnTo=${encodeURIComponent(returnTo)}`
  }

  async function signOut (userId: string, requestLog: FastifyBaseLogger): Promise<void> {
    const stored = await tokens.read(userId)
    const refreshToken = stored?.value.refreshToken
    if (refreshToken !== undefined && provider.revocationEndpoint !== undefined) {
      try {
        await ims.revoke(refreshToken, 'refresh_token')
      } catch (error) {
        // The local sign-out still happens; IMS expires the grant by itself eventually.
        requestLog.warn({ userId, error: (error as { error?: string }).error }, 'lightroom-ims: revoking the grant at IMS failed')
      }
    }
    await tokens.signOut(userId)
    tokens.events.emit('logout', { userId, reason: 'signed_out' })
  }

  const flowNames = flowCookieNames(options.secureCookies)
  // A sign-in that takes longer than 10 minutes fails anyway (IMS codes live 5): the flow cookies
  // expire by themselves even when the callback never comes.
  const flowCookieOptions = { path: '/', httpOnly: true as const, sameSite: 'lax' as const, secure: options.secureCookies, maxAge: 600 }
  const context: Omit<PluginContext, 'authorizationUrl'> & { authorizationUrl?: PluginContext['authorizationUrl'] } = {
    options,
    provider,
    ims,
    idTokens,
    sessions,
    tokens,
    now,
    loginPath,
    signOut,
    flowCookies: { ...flowNames, options: flowCookieOptions }
  }

  // Routes and @fastify/oauth2 live in their own encapsulated context: its decorators and our error
  // handler stay out of the host app.
  await fastify.register(async function routes (child) {
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
      checkStateFunction: (request: FastifyRequest) => statesMatch((request.query as Record<string, unknown>).state, request.cookies[flowNames.state]),
      redirectStateCookieName: flowNames.state,
      verifierCookieName: flowNames.verifier,
      cookie: flowCookieOptions,
      userAgent: false
    })
    const oauth = (child as unknown as Record<string, { generateAuthorizationUri: (request: FastifyRequest, reply: FastifyReply) => Promise<string> }>).lightroomImsOAuth2!
    context.authorizationUrl = async (request, reply) => await oauth.generateAuthorizationUri(request, reply)
    const ctx = context as PluginContext

    child.setErrorHandler(function (error: unknown, request, reply) {
      if (error instanceof LightroomAuthError) return reply.code(error.statusCode).send({ statusCode: error.statusCode, code: error.code, error: error.name, message: error.message })
      // Never echo an unexpected error's message: it may quote upstream text.
      request.log.error({ err: { type: (error as Error)?.name, message: (error as Error)?.message } }, 'lightroom-ims: unexpected error in an auth route')
      const status = (error as { statusCode?: number }).statusCode
      if (typeof status === 'number' && status >= 400 && status < 500) return reply.code(status).send({ statusCode: status, error: 'Bad Request', message: 'Invalid request' })
      return reply.code(500).send({ statusCode: 500, error: 'Internal Server Error', message: 'Sign-in failed unexpectedly; please try again' })
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
    const routeOptions = { logSerializers: { req: redactedRequestSerializer } }
    child.get(`${options.routePrefix}/login`, routeOptions, loginHandler(ctx))
    child.get(`${options.routePrefix}/callback`, routeOptions, callbackHandler(ctx))
    child.post(`${options.routePrefix}/logout`, routeOptions, logoutHandler(ctx))
  })

  fastify.decorateRequest(kTokenSet, null)
  /**
   * The request's session together with the user's stored tokens, or undefined when signed out: no
   * session, no tokens, or a session from before the user's last sign-out (any browser, any instance).
   */
  async function signedIn (request: FastifyRequest): Promise<{ session: SessionRecord, set: TokenSet } | undefined> {
    const session = await sessions.read(request)
    if (session === undefined) return undefined
    const state = request as unknown as RequestState
    const set = state[kTokenSet] ?? (await tokens.read(session.userId))?.value
    if (set === undefined || !tokens.sessionStillValid(set, session.createdAt)) return undefined
    state[kTokenSet] = set
    return { session, set }
  }

  fastify.decorateRequest('lightroomUserId', async function (this: FastifyRequest): Promise<string | undefined> {
    return (await signedIn(this))?.session.userId
  })
  fastify.decorateRequest('lightroomTokenInfo', async function (this: FastifyRequest): Promise<TokenInfo | undefined> {
    const set = (await signedIn(this))?.set
    if (set === undefined) return undefined
    return { userId: set.userId, accessExpiresAt: set.accessExpiresAt, refreshIssuedAt: set.refreshIssuedAt, refreshExpiresAt: set.refreshExpiresAt, receivedAt: set.receivedAt }
  })
  fastify.decorateRequest('lightroomApi', function (this: FastifyRequest): LightroomClient {
    return lightroomApi(async (getOptions) => await this.lightroomToken(getOptions))
  })
  fastify.decorateRequest('lightroomToken', async function (this: FastifyRequest, getOptions?: GetOptions): Promise<string> {
    const state = this as unknown as RequestState
    if (getOptions?.force !== true) {
      // The common case with the in-memory store: nothing changed since the last request, so the
      // answer is known without a single await.
      const known = sessions.peek(this)
      const set = known === undefined ? undefined : tokens.peekUsable(known.userId)
      if (set !== undefined && tokens.sessionStillValid(set, known!.createdAt)) {
        state[kTokenSet] = set
        return set.accessToken
      }
    }
    const current = await signedIn(this)
    if (current === undefined) throw loginRequired()
    // Second call in one request: no store read while the first answer is still good.
    if (getOptions?.force !== true && tokens.isUsable(current.set)) return current.set.accessToken
    // The set just read is enough to decide; a refresh re-reads under its lock anyway.
    const set = await tokens.ensureFresh(current.set, getOptions)
    state[kTokenSet] = set
    return set.accessToken
  })

  const requireLogin = async function (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (await signedIn(request) !== undefined) return
    const loginUrl = loginPath(request.url)
    const accept = request.headers.accept
    if (request.method === 'GET' && typeof accept === 'string' && accept.includes('text/html')) {
      await reply.header('cache-control', 'no-store').redirect(loginUrl, 302)
      return
    }
    const error = loginRequired()
    await reply.code(401).send({ statusCode: 401, code: error.code, error: 'Unauthorized', message: error.message, loginUrl })
  }

  const decorator: LightroomDecorator = {
    tokenFor: async (userId, getOptions) => await tokens.accessToken(userId, getOptions),
    api: (userId) => lightroomApi(async (getOptions) => await tokens.accessToken(userId, getOptions)),
    requireLogin,
    loginUrl: loginPath,
    logoutUrl: () => `${routeBase}/logout`,
    renewExpiring: async (renew) => await tokens.renewExpiring((renew?.olderThanSeconds ?? options.renewRefreshAfterMs / 1000) * 1000),
    signOut: async (userId) => { await signOut(userId, log) },
    reencryptAll: async () => {
      const total = { scanned: 0, reencrypted: 0, failed: 0 }
      for (const prefix of ['tokens:', 'session:']) {
        const part = await store.reencryptAll(prefix)
        total.scanned += part.scanned
        total.reencrypted += part.reencrypted
        total.failed += part.failed
      }
      return total
    },
    events: tokens.events,
    provider: Object.freeze({ ...provider })
  }
  fastify.decorate('lightroom', decorator)
}

/**
 * Knobs for tests and benchmarks, deliberately outside the documented options: a fake clock, quick
 * IMS retries, short refresh locks.
 */
export interface TestingHooks {
  now?: () => number
  imsRetry?: { retries?: number, retryBaseDelayMs?: number, maxRetryDelayMs?: number }
  refreshLock?: { lockTtlMs?: number, waitForPeerMs?: number, pollIntervalMs?: number, failureCooldownMs?: number }
  lightroomRetry?: { retries?: number, retryBaseDelayMs?: number, maxRetryDelayMs?: number, sleep?: (ms: number) => Promise<void> }
}

function stripTestingHooks (options: LightroomImsOptions & TestingHooks): LightroomImsOptions {
  if (options === null || typeof options !== 'object') return options
  const { now, imsRetry, refreshLock, lightroomRetry, ...rest } = options
  return rest
}

export const lrImsPlugin = fp(lightroomIms, { fastify: '5.x', name: 'fastify-lightroom-ims' })
export default lrImsPlugin

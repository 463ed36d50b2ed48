/**
 * Builds the services of one registration from its resolved options: one keep-alive dispatcher for
 * every outgoing call, the discovered provider, the store, and the managers that use them.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { Agent } from 'undici'
import { CurrentUser } from './auth/current-user.js'
import { SessionManager } from './auth/session.js'
import { TokenManager } from './auth/token-manager.js'
import type { PluginContext } from './context.js'
import { LightroomConfigError } from './errors.js'
import { KEEP_ALIVE_TIMEOUT_MS, MAX_CONNECTIONS_PER_ORIGIN, MAX_SIGN_IN_CONNECTIONS_PER_ORIGIN } from './http/request.js'
import { ImsClient } from './ims/client.js'
import { discoverProvider, type ProviderMetadata } from './ims/discovery.js'
import { IdTokenVerifier } from './ims/id-token.js'
import { CatalogIdCache, ConcurrencyLimit, LightroomClient } from './lightroom/client.js'
import type { ResolvedOptions } from './options.js'
import { FlowRecords } from './routes/flow-record.js'
import { encryptedStore } from './store/encrypted.js'
import { memoryBackend } from './store/memory.js'
import type { TestingHooks } from './testing-hooks.js'

function flowCookieNames (secure: boolean): { state: string, verifier: string } {
  // `__Host-` cookies cannot be planted by a sibling subdomain or a plaintext response: that is what
  // stops an attacker from pre-seeding the state and verifier (login CSRF).
  const prefix = secure ? '__Host-' : ''
  return { state: `${prefix}lr_oauth_state`, verifier: `${prefix}lr_oauth_verifier` }
}

export async function buildServices (fastify: FastifyInstance, options: ResolvedOptions, hooks: TestingHooks): Promise<PluginContext> {
  const now = hooks.now ?? Date.now
  const log = fastify.log
  // Registered under a Fastify prefix (app.register(plugin, { prefix: '/api' })), our routes and
  // every URL we hand out live below it.
  const routeBase = `${fastify.prefix}${options.routePrefix}`
  const expectedCallback = `${routeBase}/callback`
  if (options.redirectUrl.pathname !== expectedCallback && !options.redirectUriRewritten) {
    // IMS would send every user to a path that 404s: the most common first-day mistake.
    throw new LightroomConfigError('redirectUri', `ends in ${options.redirectUrl.pathname}, but the callback route is ${expectedCallback}; make it end in ${expectedCallback} (and register that at Adobe), or set redirectUriRewritten: true if a proxy rewrites the path`)
  }

  const dispatcher = new Agent({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, connections: MAX_CONNECTIONS_PER_ORIGIN })
  // Anyone can start a sign-in, and each costs a code exchange: under a slow IMS, junk callbacks
  // would otherwise hold every connection of the pool that signed-in users' refreshes need.
  const signInDispatcher = new Agent({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, connections: MAX_SIGN_IN_CONNECTIONS_PER_ORIGIN })
  let closing: Promise<unknown> | undefined
  const closeDispatchers = async (): Promise<void> => { await (closing ??= Promise.all([dispatcher.close(), signInDispatcher.close()])) }
  fastify.addHook('onClose', closeDispatchers)

  let provider: ProviderMetadata
  try {
    provider = await discoverProvider({ discoveryUrl: options.discoveryUrl, issuer: options.issuer, timeoutMs: options.httpTimeoutMs, dispatcher })
  } catch (error) {
    await closeDispatchers()
    throw error
  }
  if (options.signOutAtIms && provider.endSessionEndpoint === undefined && !provider.isIms) {
    await closeDispatchers()
    throw new LightroomConfigError('signOutAtIms', 'needs a provider with an end_session_endpoint (its discovery document has none)')
  }

  let store = options.store
  if (store === undefined) {
    log.warn('lightroom-ims: no "store" option: tokens are kept in memory under a random key and vanish on restart; pass encryptedStore(backend, { keys }) in production')
    store = encryptedStore(memoryBackend(), { keys: [{ id: 'ephemeral', key: randomBytes(32) }] })
  }
  if (options.cookieSecretGenerated) {
    log.warn('lightroom-ims: no "cookieSecret" option: sessions are signed with a random secret and end on restart')
  }
  const ims = new ImsClient({
    tokenEndpoint: provider.tokenEndpoint,
    revocationEndpoint: provider.revocationEndpoint,
    userinfoEndpoint: provider.userinfoEndpoint,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    timeoutMs: options.httpTimeoutMs,
    dispatcher,
    signInDispatcher,
    ...hooks.imsRetry
  })
  const tokens = new TokenManager({
    store,
    ims,
    log,
    now,
    refreshMarginMs: options.refreshMarginMs,
    renewRefreshAfterMs: options.renewRefreshAfterMs,
    sessionMaxAgeMs: options.sessionMaxAgeMs,
    maxSessionsPerUser: options.maxSessionsPerUser,
    ...hooks.refreshLock
  })
  fastify.addHook('onClose', async () => { await tokens.close() })
  const sessions = new SessionManager({ store, secrets: options.cookieSecrets, secure: options.secureCookies, maxAgeMs: options.sessionMaxAgeMs, now })
  const idTokens = new IdTokenVerifier({
    jwksUri: provider.jwksUri,
    issuers: provider.idTokenIssuers,
    clientId: options.clientId,
    algorithms: provider.idTokenAlgorithms,
    clockToleranceSeconds: options.clockToleranceSeconds,
    timeoutMs: options.httpTimeoutMs,
    dispatcher: signInDispatcher,
    now
  })
  // A sign-in that takes longer than 10 minutes fails anyway (IMS codes live 5): the flow cookies
  // expire by themselves even when the callback never comes.
  // One cap for every Lightroom call of this registration, whichever user or request makes it.
  const lightroomLimit = new ConcurrencyLimit(options.lightroomMaxConcurrency)
  const catalogIds = new CatalogIdCache()
  const flowCookieOptions = { path: '/', httpOnly: true as const, sameSite: 'lax' as const, secure: options.secureCookies, maxAge: 600 }
  return {
    options,
    provider,
    store,
    ims,
    idTokens,
    sessions,
    tokens,
    flows: new FlowRecords(store, now),
    currentUser: new CurrentUser(sessions, tokens, store),
    now,
    log,
    flowCookies: { ...flowCookieNames(options.secureCookies), options: flowCookieOptions },
    routeBase,
    loginPath: (returnTo) => returnTo === undefined ? `${routeBase}/login` : `${routeBase}/login?returnTo=${encodeURIComponent(returnTo)}`,
    // A client holds configuration only, so one per call is cheap; all share this registration's keep-alive Agent.
    lightroomApi: (accessToken) => new LightroomClient({
      baseUrl: options.lightroomBaseUrl,
      apiKey: options.clientId,
      accessToken,
      dispatcher,
      timeoutMs: options.httpTimeoutMs,
      limiter: lightroomLimit,
      catalogIdCache: catalogIds,
      ...hooks.lightroomRetry
    })
  }
}

import { randomBytes } from 'node:crypto'
import { LightroomConfigError } from './errors.js'
import { isLoopbackHost } from './http/loopback.js'
import { DEFAULT_MAX_CONCURRENCY, LIGHTROOM_BASE_URL, lightroomOrigin } from './lightroom/client.js'
import { kEncryptsAtRest, type TokenStore } from './store/types.js'
import type { WithTestingHooks } from './testing-hooks.js'

export const IMS_DISCOVERY_URL = 'https://ims-na1.adobelogin.com/ims/.well-known/openid-configuration'
export const DEFAULT_SCOPES: readonly string[] = Object.freeze(['openid', 'AdobeID', 'lr_partner_apis', 'lr_partner_rendition_apis', 'offline_access'])

/** What a host app passes to `app.register(lrImsPlugin, options)`. */
export interface LightroomImsOptions extends WithTestingHooks {
  /** IMS client id (also Lightroom's X-API-Key). Required. */
  clientId: string
  /** IMS client secret ("OAuth Web App" credential). Required. */
  clientSecret: string
  /** Absolute URL of `{routePrefix}/callback` as registered with IMS. Required. */
  redirectUri: string
  /** OpenID discovery document; IMS production by default. */
  discoveryUrl?: string
  /** Expected `issuer` of the discovery document; derived from discoveryUrl when omitted (see lib/discovery.ts). */
  issuer?: string
  /** Scopes requested at sign-in. */
  scopes?: string[]
  /** Signs the session cookie. The first signs, all verify (rotation). 32+ characters. Random (with a warning) when omitted. */
  cookieSecret?: string | string[]
  /** `encryptedStore(backend, { keys })`. In-memory with a random key (and a warning) when omitted. */
  store?: TokenStore
  /** Where the login, callback and logout routes live. */
  routePrefix?: string
  /** Refresh when the access token has less than this left. */
  refreshMarginSeconds?: number
  /** Renew the refresh token once it is older than this, so active users never meet IMS's 14-day limit. */
  renewRefreshAfterSeconds?: number
  /** How long a session (cookie and record) lasts without a new sign-in. */
  sessionMaxAgeSeconds?: number
  /** Sessions (signed-in devices) kept per user; a sign-in beyond it ends the oldest. Default 10. */
  maxSessionsPerUser?: number
  /** Timeout of every call to IMS. */
  httpTimeoutMs?: number
  /** Clock tolerance when checking the id_token's exp/iat. */
  clockToleranceSeconds?: number
  /** Origins allowed to POST logout, besides the redirect URI's own. */
  allowedOrigins?: string[]
  /** Where the callback sends the browser when no returnTo was given. */
  defaultReturnTo?: string
  /** Origin of the Lightroom API. Default 'https://lr.adobe.io'. */
  lightroomBaseUrl?: string
  /**
   * After POST logout, also send the browser through the provider's front-channel sign-out
   * (IMS `/ims/logout/v1`, or the discovery document's `end_session_endpoint`). Default false.
   */
  signOutAtIms?: boolean
  /** True when a proxy rewrites the redirect URI's path to the callback route; otherwise they must match. */
  redirectUriRewritten?: boolean
  /** Lightroom calls in flight at once, for the whole app (every user, every request). Default 16. */
  lightroomMaxConcurrency?: number
}

export interface ResolvedOptions {
  clientId: string
  clientSecret: string
  redirectUri: string
  redirectUrl: URL
  discoveryUrl: string
  issuer: string | undefined
  scopes: string[]
  cookieSecrets: string[]
  cookieSecretGenerated: boolean
  store: TokenStore | undefined
  routePrefix: string
  refreshMarginMs: number
  renewRefreshAfterMs: number
  sessionMaxAgeMs: number
  maxSessionsPerUser: number
  httpTimeoutMs: number
  clockToleranceSeconds: number
  allowedOrigins: string[]
  defaultReturnTo: string
  lightroomBaseUrl: string
  lightroomMaxConcurrency: number
  signOutAtIms: boolean
  /** https redirect URI: Secure cookies with the `__Host-` prefix. */
  secureCookies: boolean
  redirectUriRewritten: boolean
}

const KNOWN_OPTIONS = new Set([
  'clientId', 'clientSecret', 'redirectUri', 'discoveryUrl', 'issuer', 'scopes', 'cookieSecret', 'store',
  'routePrefix', 'refreshMarginSeconds', 'renewRefreshAfterSeconds', 'sessionMaxAgeSeconds', 'maxSessionsPerUser', 'httpTimeoutMs',
  'clockToleranceSeconds', 'allowedOrigins', 'defaultReturnTo', 'lightroomBaseUrl', 'redirectUriRewritten', 'signOutAtIms',
  'lightroomMaxConcurrency'
])

function fail (option: string, message: string): never {
  throw new LightroomConfigError(option, message)
}

function requiredString (options: Record<string, unknown>, name: string): string {
  const value = options[name]
  if (typeof value !== 'string' || value.trim() === '') fail(name, 'is required and must be a non-empty string')
  return value
}

function absoluteHttpUrl (name: string, value: unknown): URL {
  if (typeof value !== 'string') fail(name, 'must be an absolute http(s) URL string')
  let url: URL
  try {
    url = new URL(value)
  } catch {
    fail(name, `must be an absolute http(s) URL, got "${value}"`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(name, `must use http or https, got "${url.protocol}"`)
  if (url.username !== '' || url.password !== '') fail(name, 'must not contain credentials')
  return url
}

/** Where discovery (and so every token call) points: https, plain http only to this machine. */
function providerUrl (name: string, value: unknown): URL {
  const url = absoluteHttpUrl(name, value)
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) fail(name, 'must use https (plain http only to localhost)')
  return url
}

function seconds (options: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const value = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    fail(name, `must be a number between ${min} and ${max}`)
  }
  return value
}

function integer (options: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const value = seconds(options, name, fallback, min, max)
  if (!Number.isInteger(value)) fail(name, `must be a whole number between ${min} and ${max}`)
  return value
}

/** Normalises '/auth/lightroom/' and 'auth/lightroom' to '/auth/lightroom'; '' or '/' means the root. */
function routePrefix (value: unknown): string {
  if (value === undefined) return '/auth/lightroom'
  if (typeof value !== 'string' || !/^\/?[A-Za-z0-9\-._~/]*$/.test(value) || value.includes('//')) {
    fail('routePrefix', 'must be a URL path such as "/auth/lightroom"')
  }
  const trimmed = value.replace(/\/+$/, '')
  if (trimmed === '') return ''
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`
}

function cookieSecrets (value: unknown): { secrets: string[], generated: boolean } {
  if (value === undefined) return { secrets: [randomBytes(32).toString('base64url')], generated: true }
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0) fail('cookieSecret', 'must be a string or a non-empty array of strings')
  list.forEach((secret, index) => {
    const name = Array.isArray(value) ? `cookieSecret[${index}]` : 'cookieSecret'
    if (typeof secret !== 'string' || secret.length < 32) fail(name, 'must be a string of at least 32 characters')
  })
  return { secrets: list as string[], generated: false }
}

function scopes (value: unknown): string[] {
  if (value === undefined) return [...DEFAULT_SCOPES]
  if (!Array.isArray(value) || value.length === 0) fail('scopes', 'must be a non-empty array of scope strings')
  for (const scope of value) {
    if (typeof scope !== 'string' || !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(scope) || scope.includes(',')) {
      fail('scopes', `contains an invalid scope: ${JSON.stringify(scope)}`)
    }
  }
  return [...new Set(value as string[])]
}

function store (value: unknown): TokenStore | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || (value as Partial<TokenStore>)[kEncryptsAtRest] !== true) {
    fail('store', 'must be created with encryptedStore(backend, { keys }): tokens are only ever stored encrypted')
  }
  return value as TokenStore
}

function allowedOrigins (value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) fail('allowedOrigins', 'must be an array of origins such as "https://app.example"')
  return value.map((origin, index) => {
    const url = absoluteHttpUrl(`allowedOrigins[${index}]`, origin)
    return url.origin
  })
}

export function resolveOptions (input: unknown): ResolvedOptions {
  if (input === null || typeof input !== 'object') {
    throw new LightroomConfigError('options', 'must be an object with at least clientId, clientSecret and redirectUri')
  }
  const options = input as Record<string, unknown>
  for (const key of Object.keys(options)) {
    // Fastify passes its own registration options (prefix, logLevel...) alongside ours.
    if (key === 'prefix') {
      // fastify-plugin plugins share their parent's context, so Fastify ignores a prefix given here.
      fail('prefix', 'is ignored by Fastify for this plugin: use "routePrefix", or register the plugin inside a prefixed plugin')
    }
    if (!KNOWN_OPTIONS.has(key) && !['logLevel', 'logSerializers'].includes(key)) {
      fail(key, 'is not an option of fastify-lightroom-ims (check its spelling)')
    }
  }

  const clientId = requiredString(options, 'clientId')
  const clientSecret = requiredString(options, 'clientSecret')
  requiredString(options, 'redirectUri')
  const redirectUrl = absoluteHttpUrl('redirectUri', options.redirectUri)
  if (redirectUrl.hash !== '') fail('redirectUri', 'must not contain a fragment')
  const discoveryUrl = imsAwareDiscoveryUrl(providerUrl('discoveryUrl', options.discoveryUrl ?? IMS_DISCOVERY_URL))
  const issuer = options.issuer === undefined ? undefined : providerUrl('issuer', options.issuer).href.replace(/\/$/, '')
  const defaultReturnTo = options.defaultReturnTo ?? '/'
  if (typeof defaultReturnTo !== 'string' || !defaultReturnTo.startsWith('/') || defaultReturnTo.startsWith('//')) {
    fail('defaultReturnTo', 'must be a relative path starting with a single "/"')
  }
  const { secrets, generated } = cookieSecrets(options.cookieSecret)

  return {
    clientId,
    clientSecret,
    redirectUri: redirectUrl.href,
    redirectUrl,
    discoveryUrl,
    issuer,
    scopes: scopes(options.scopes),
    cookieSecrets: secrets,
    cookieSecretGenerated: generated,
    store: store(options.store),
    routePrefix: routePrefix(options.routePrefix),
    refreshMarginMs: seconds(options, 'refreshMarginSeconds', 300, 0, 86400) * 1000,
    renewRefreshAfterMs: seconds(options, 'renewRefreshAfterSeconds', 7 * 86400, 60, 365 * 86400) * 1000,
    sessionMaxAgeMs: seconds(options, 'sessionMaxAgeSeconds', 30 * 86400, 60, 400 * 86400) * 1000,
    maxSessionsPerUser: integer(options, 'maxSessionsPerUser', 10, 1, 100),
    httpTimeoutMs: seconds(options, 'httpTimeoutMs', 10000, 100, 120000),
    clockToleranceSeconds: seconds(options, 'clockToleranceSeconds', 60, 0, 600),
    allowedOrigins: allowedOrigins(options.allowedOrigins),
    defaultReturnTo,
    lightroomBaseUrl: lightroomBaseUrl(options.lightroomBaseUrl),
    lightroomMaxConcurrency: lightroomMaxConcurrency(options.lightroomMaxConcurrency),
    signOutAtIms: flag(options, 'signOutAtIms'),
    secureCookies: redirectUrl.protocol === 'https:',
    redirectUriRewritten: flag(options, 'redirectUriRewritten')
  }
}

function flag (options: Record<string, unknown>, name: string): boolean {
  const value = options[name] ?? false
  if (typeof value !== 'boolean') fail(name, 'must be true or false')
  return value
}

/**
 * IMS serves its discovery document under /ims only; the same path on the bare host answers HTML.
 * Said at start-up, with the right URL, rather than as a JSON parse error from the network.
 */
function imsAwareDiscoveryUrl (url: URL): string {
  if (/(^|\.)adobelogin\.com$/.test(url.hostname) && !url.pathname.startsWith('/ims/')) {
    fail('discoveryUrl', `points at an Adobe IMS host without "/ims": use ${url.origin}/ims/.well-known/openid-configuration`)
  }
  return url.href
}

/** The bearer token goes wherever this points: an origin only, https (plain http only to localhost). */
function lightroomBaseUrl (value: unknown): string {
  if (value === undefined) return LIGHTROOM_BASE_URL
  if (typeof value !== 'string') fail('lightroomBaseUrl', 'must be a string')
  try {
    return lightroomOrigin(value)
  } catch {
    fail('lightroomBaseUrl', 'must be an https origin such as https://lr.adobe.io (plain http only to localhost)')
  }
}

/** Adobe may revoke the key of an app that floods Lightroom: a bound for the whole app, never unlimited. */
function lightroomMaxConcurrency (value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_CONCURRENCY
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 256) fail('lightroomMaxConcurrency', 'must be an integer from 1 to 256')
  return value
}

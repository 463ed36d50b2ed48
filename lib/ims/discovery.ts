import type { Dispatcher } from 'undici'
import { LightroomConfigError } from '../errors.js'
import { getWithRetries, headerValue } from '../http/request.js'
import type { HttpResponse } from '../http/request.js'
import { isLoopbackHost } from '../http/loopback.js'

/** The part of an OpenID discovery document the plugin relies on, already validated. */
export interface ProviderMetadata {
  issuer: string
  authorizationEndpoint: string
  tokenEndpoint: string
  jwksUri: string
  userinfoEndpoint: string | undefined
  revocationEndpoint: string | undefined
  endSessionEndpoint: string | undefined
  idTokenAlgorithms: string[]
  /**
   * Adobe IMS's own document (served at `{host}/ims/.well-known/...`, issuer the bare host): its
   * id_tokens carry either the issuer or `{issuer}/ims`, both documented by Adobe.
   */
  isIms: boolean
  /** Every `iss` an id_token may carry: the issuer, and for IMS also `{issuer}/ims`. */
  idTokenIssuers: string[]
}

const IMS_DISCOVERY_PATH = '/ims/.well-known/openid-configuration'

/** IMS's document lives under /ims while naming the bare host (same origin, no path) as issuer. */
function isImsDocument (issuer: string, discoveryUrl: URL): boolean {
  if (discoveryUrl.pathname !== IMS_DISCOVERY_PATH || !URL.canParse(issuer)) return false
  const url = new URL(issuer)
  return url.origin === discoveryUrl.origin && (url.pathname === '/' || url.pathname === '')
}

export interface DiscoveryOptions {
  discoveryUrl: string
  /** Expected issuer; when omitted the issuer must be a prefix of the discovery URL (IMS: its bare host). */
  issuer: string | undefined
  timeoutMs: number
  dispatcher: Dispatcher
  /** Calls in all, the first included. Default 3. */
  attempts?: number
  sleep?: (ms: number) => Promise<void>
}

const MAX_DOCUMENT_BYTES = 256 * 1024
const DEFAULT_ATTEMPTS = 3
// Start-up can afford a short wait, not a long one: a deploy should fail fast and say why.
const RETRY_BASE_DELAY_MS = 250
const MAX_RETRY_DELAY_MS = 2_000

function invalid (message: string, cause?: unknown): LightroomConfigError {
  return new LightroomConfigError('discoveryUrl', message, { cause })
}

/**
 * Network failures, 429 and 5xx are retried a few times (a provider blip should not stop a deploy);
 * an answer that is wrong fails at once.
 */
async function fetchDocument (options: DiscoveryOptions): Promise<unknown> {
  const { discoveryUrl } = options
  let res: HttpResponse
  try {
    res = await getWithRetries(discoveryUrl, {
      timeoutMs: options.timeoutMs,
      dispatcher: options.dispatcher,
      headers: { accept: 'application/json' }
    }, { retries: (options.attempts ?? DEFAULT_ATTEMPTS) - 1, baseDelayMs: RETRY_BASE_DELAY_MS, maxDelayMs: MAX_RETRY_DELAY_MS, sleep: options.sleep })
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw invalid(`could not be fetched from ${discoveryUrl}: ${reason}`, error)
  }
  if (res.status !== 200) throw invalid(`answered HTTP ${res.status} for the discovery document ${discoveryUrl}`)
  if (res.text.length > MAX_DOCUMENT_BYTES) throw invalid('returned a discovery document that is too large')
  try {
    return JSON.parse(res.text)
  } catch (error) {
    // IMS serves HTML at the bare host's /.well-known path: the usual cause is a discovery URL without "/ims".
    const type = headerValue(res, 'content-type') ?? 'unknown content type'
    throw invalid(`did not return JSON (got ${type}); for Adobe IMS use ${'https://ims-na1.adobelogin.com/ims/.well-known/openid-configuration'}`, error)
  }
}

function endpoint (document: Record<string, unknown>, field: string, discoveryUrl: URL, required: true): string
function endpoint (document: Record<string, unknown>, field: string, discoveryUrl: URL, required: false): string | undefined
function endpoint (document: Record<string, unknown>, field: string, discoveryUrl: URL, required: boolean): string | undefined {
  const value = document[field]
  if (value === undefined || value === null) {
    if (required) throw invalid(`returned a discovery document without "${field}"`)
    return undefined
  }
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw invalid(`returned a discovery document whose "${field}" is not a URL`)
  }
  // Tokens, codes and the client secret travel to these: plain http only to this machine (local
  // mocks and tests), whatever scheme the discovery URL itself used.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw invalid(`returned a discovery document whose "${field}" is not https (plain http only to localhost)`)
  }
  return url.href
}

/**
 * OpenID Connect says the discovery URL is `{issuer}/.well-known/openid-configuration`. IMS instead
 * serves it at `{host}/ims/.well-known/...` with `issuer` = the bare host. Both satisfy one rule: the
 * issuer is a prefix of the discovery URL (same origin, path prefix). A document claiming an issuer
 * elsewhere is refused, unless the host app named that issuer explicitly.
 */
function checkIssuer (issuer: string, options: DiscoveryOptions): void {
  const normalised = issuer.replace(/\/$/, '')
  if (options.issuer !== undefined) {
    if (normalised !== options.issuer) throw invalid(`returned issuer "${issuer}", expected "${options.issuer}" (option "issuer")`)
    return
  }
  let issuerUrl: URL
  try {
    issuerUrl = new URL(normalised)
  } catch {
    throw invalid('returned a discovery document whose "issuer" is not a URL')
  }
  const discovery = new URL(options.discoveryUrl)
  const issuerPath = issuerUrl.pathname.replace(/\/$/, '')
  if (issuerUrl.origin !== discovery.origin || !discovery.pathname.startsWith(`${issuerPath}/`)) {
    throw invalid(`returned issuer "${issuer}", which does not match the discovery URL; set the "issuer" option if this provider is trusted`)
  }
}

export function parseDiscoveryDocument (document: unknown, options: DiscoveryOptions): ProviderMetadata {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw invalid('returned a discovery document that is not a JSON object')
  }
  const doc = document as Record<string, unknown>
  if (typeof doc.issuer !== 'string' || doc.issuer === '') throw invalid('returned a discovery document without "issuer"')
  checkIssuer(doc.issuer, options)
  const discoveryUrl = new URL(options.discoveryUrl)
  const pkceMethods = doc.code_challenge_methods_supported
  // IMS does not list PKCE methods but supports S256; a provider that lists them without S256 cannot be used safely.
  if (Array.isArray(pkceMethods) && !pkceMethods.includes('S256')) {
    throw invalid('describes a provider that does not support PKCE with S256')
  }
  const algorithms = Array.isArray(doc.id_token_signing_alg_values_supported)
    ? doc.id_token_signing_alg_values_supported.filter((alg): alg is string => typeof alg === 'string' && alg !== 'none')
    : []
  const isIms = isImsDocument(doc.issuer, discoveryUrl)
  const bare = doc.issuer.replace(/\/$/, '')
  return {
    issuer: doc.issuer,
    isIms,
    idTokenIssuers: isIms ? [doc.issuer, `${bare}/ims`] : [doc.issuer],
    authorizationEndpoint: endpoint(doc, 'authorization_endpoint', discoveryUrl, true),
    tokenEndpoint: endpoint(doc, 'token_endpoint', discoveryUrl, true),
    jwksUri: endpoint(doc, 'jwks_uri', discoveryUrl, true),
    userinfoEndpoint: endpoint(doc, 'userinfo_endpoint', discoveryUrl, false),
    revocationEndpoint: endpoint(doc, 'revocation_endpoint', discoveryUrl, false),
    endSessionEndpoint: endpoint(doc, 'end_session_endpoint', discoveryUrl, false),
    idTokenAlgorithms: algorithms.length > 0 ? algorithms : ['RS256']
  }
}

/** Fetches and validates the discovery document at start-up. */
export async function discoverProvider (options: DiscoveryOptions): Promise<ProviderMetadata> {
  return parseDiscoveryDocument(await fetchDocument(options), options)
}

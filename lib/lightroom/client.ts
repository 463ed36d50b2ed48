/**
 * Calls to the Lightroom partner API (lr.adobe.io) on behalf of one user.
 * Every call carries the API key and, except health, the user's bearer token;
 * bodies lose their `while (1) {}` prefix before parsing; 429, 5xx, timeouts
 * and resets are retried with backoff; a 401 forces exactly one token refresh.
 * Errors never carry a token.
 */
import type { Dispatcher } from 'undici'
import { LightroomApiError } from '../errors.js'
import { get, headerValue } from '../http/request.js'
import type { HttpResponse } from '../http/request.js'
import { FINAL, isTransientStatus, parseRetryAfter, retry, transientFailureKind } from '../http/retry.js'
import type { RetryPolicy } from '../http/retry.js'
import { isJsonObject, parseLightroomBody, readErrorBody, tryParseLightroomBody } from './body.js'
import type { LightroomAccount, LightroomCatalog } from './types.js'

export type {
  EntitlementStatus, LightroomAccount, LightroomCatalog, LightroomEntitlement, LightroomLink, LightroomStorage
} from './types.js'

export const LIGHTROOM_BASE_URL = 'https://lr.adobe.io'
const DEFAULT_TIMEOUT_MS = 10_000
/** What Adobe's partner docs ask for 429s. */
const DEFAULT_RETRIES = 3
const DEFAULT_RETRY_BASE_DELAY_MS = 500
const DEFAULT_MAX_RETRY_DELAY_MS = 8_000
/** Server text is echoed into messages: keep it short. */
const MAX_ECHOED_CHARS = 200

export interface AccessTokenOptions {
  force?: boolean
  rejectedAccessToken?: string
}

export interface LightroomClientOptions {
  /** Default 'https://lr.adobe.io'. An origin only; plain http only to a loopback host (the mock). */
  baseUrl?: string | undefined
  /** The IMS client id, sent as X-API-Key. */
  apiKey: string
  /** Gets the user's access token; called with `{ force: true, rejectedAccessToken }` after a 401. */
  accessToken: (options?: AccessTokenOptions) => Promise<string>
  dispatcher?: Dispatcher | undefined
  /** Per attempt. Default 10000. */
  timeoutMs?: number | undefined
  /** Extra attempts after a 429, a 5xx, a timeout or a reset. Default 3. */
  retries?: number | undefined
  /** First backoff step; doubles on each retry, with jitter. Default 500. */
  retryBaseDelayMs?: number | undefined
  /** Cap for one wait, backoff and Retry-After alike. Default 8000. */
  maxRetryDelayMs?: number | undefined
  /** Injectable for tests, to record waits instead of making them. */
  sleep?: ((ms: number) => Promise<void>) | undefined
}

/** Only trial and subscriber accounts may use the partner APIs; `*_expired` and `created` may not. */
export function isEntitled (account: LightroomAccount): boolean {
  const status = account.entitlement?.status
  return status === 'trial' || status === 'subscriber'
}

interface CallOptions {
  /** Send the bearer token (all but health). */
  auth: boolean
  /** Answer null for a Lightroom 404 instead of throwing (the user has no such resource). */
  notFoundAsNull?: boolean
}

export class LightroomClient {
  readonly #origin: string
  readonly #apiKey: string
  readonly #accessToken: LightroomClientOptions['accessToken']
  readonly #dispatcher: Dispatcher | undefined
  readonly #timeoutMs: number
  readonly #retry: RetryPolicy

  constructor (options: LightroomClientOptions) {
    this.#origin = lightroomOrigin(options.baseUrl ?? LIGHTROOM_BASE_URL)
    if (typeof options.apiKey !== 'string' || options.apiKey === '') throw new TypeError('LightroomClient: `apiKey` must be a non-empty string')
    if (typeof options.accessToken !== 'function') throw new TypeError('LightroomClient: `accessToken` must be a function')
    this.#apiKey = options.apiKey
    this.#accessToken = options.accessToken
    this.#dispatcher = options.dispatcher
    this.#timeoutMs = checkedNumber('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS, 1)
    const retries = checkedNumber('retries', options.retries, DEFAULT_RETRIES, 0)
    if (!Number.isInteger(retries)) throw new TypeError('LightroomClient: `retries` must be an integer')
    this.#retry = {
      retries,
      baseDelayMs: checkedNumber('retryBaseDelayMs', options.retryBaseDelayMs, DEFAULT_RETRY_BASE_DELAY_MS, 0),
      maxDelayMs: checkedNumber('maxRetryDelayMs', options.maxRetryDelayMs, DEFAULT_MAX_RETRY_DELAY_MS, 0),
      sleep: options.sleep
    }
  }

  /** GET /v2/health: needs the API key only, so it costs no token (and works for nobody signed in). */
  async health (): Promise<unknown> {
    return await this.#call('/v2/health', { auth: false })
  }

  async account (): Promise<LightroomAccount> {
    return resource(await this.#call('/v2/account', { auth: true }), '/v2/account') as LightroomAccount
  }

  /** The user's catalog, or null when they have none yet (Lightroom answers 404). */
  async catalog (): Promise<LightroomCatalog | null> {
    const body = await this.#call('/v2/catalog', { auth: true, notFoundAsNull: true })
    return body === null ? null : resource(body, '/v2/catalog') as LightroomCatalog
  }

  /**
   * GET of any path under /v2/, e.g. `/v2/catalogs/${catalog.id}/albums`. Absolute URLs and anything
   * the URL parser would rewrite are refused before a token is fetched: the bearer token goes to the
   * configured Lightroom origin and nowhere else.
   */
  async get<T = unknown> (path: string): Promise<T> {
    if (!this.#isApiPath(path)) {
      throw new TypeError('LightroomClient.get(): the path must be relative, already encoded and start with /v2/')
    }
    return await this.#call(path, { auth: true }) as T
  }

  #isApiPath (path: unknown): path is string {
    if (typeof path !== 'string' || !path.startsWith('/v2/')) return false
    // Dot segments, backslashes, raw spaces: what the parser rewrites is not what the caller wrote.
    const url = new URL(path, this.#origin)
    return url.href === this.#origin + path
  }

  async #call (path: string, options: CallOptions): Promise<unknown> {
    const sent: string[] = []
    const res = await this.#send(path, options.auth, sent)
    if (res.status >= 200 && res.status < 300) {
      try {
        return parseLightroomBody(res.text) ?? null
      } catch (error) {
        throw new LightroomApiError({ statusCode: 502, lightroomCode: 'LR_API_INVALID_RESPONSE', description: 'the body is not JSON', path, transient: false, cause: error })
      }
    }
    const body = tryParseLightroomBody(res.text)
    // A gateway's HTML 404 means a wrong base URL, not a missing resource: only Lightroom's own JSON 404 is "none".
    if (res.status === 404 && options.notFoundAsNull === true && isJsonObject(body)) return null
    throw httpError(res, body, path, sent)
  }

  /**
   * Sends until an answer is final: 429 / 5xx / timeouts / resets get up to `retries` more attempts
   * (thrown as the error they would end in), a 401 one forced refresh. `sent` collects the tokens
   * used, to keep them out of errors.
   */
  async #send (path: string, auth: boolean, sent: string[]): Promise<HttpResponse> {
    const url = this.#origin + path
    let token = auth ? await this.#accessToken() : undefined
    let refreshed = false
    const once = async (): Promise<HttpResponse> => {
      if (token !== undefined) sent.push(token)
      return await get(url, { timeoutMs: this.#timeoutMs, dispatcher: this.#dispatcher, headers: this.#headers(token) })
        .catch((error: unknown) => { throw transportError(error, path) })
    }
    return await retry(this.#retry, async () => {
      let res = await once()
      if (res.status === 401 && token !== undefined && !refreshed) {
        // Revoked or expired early: refresh once (the token manager skips it if a peer already did),
        // and try again at once; this does not use up a retry.
        refreshed = true
        token = await this.#accessToken({ force: true, rejectedAccessToken: token })
        res = await once()
      }
      if (isTransientStatus(res.status)) throw httpError(res, tryParseLightroomBody(res.text), path, sent)
      return res
    }, (failure) => failure instanceof LightroomApiError ? failure : FINAL)
  }

  #headers (token: string | undefined): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json', 'x-api-key': this.#apiKey }
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`
    return headers
  }
}

function resource (body: unknown, path: string): Record<string, unknown> {
  if (isJsonObject(body) && typeof body['id'] === 'string') return body
  throw new LightroomApiError({ statusCode: 502, lightroomCode: 'LR_API_INVALID_RESPONSE', description: 'the body is not a Lightroom resource', path, transient: false })
}

function httpError (res: HttpResponse, body: unknown, path: string, sent: string[]): LightroomApiError {
  const { code, description } = readErrorBody(body)
  return new LightroomApiError({
    statusCode: res.status,
    lightroomCode: code === undefined ? 'LR_API_HTTP_ERROR' : scrub(code, sent),
    description: description === undefined ? undefined : scrub(description, sent),
    path,
    retryAfterSeconds: parseRetryAfter(headerValue(res, 'retry-after'), Date.now()),
    transient: isTransientStatus(res.status)
  })
}

function transportError (error: unknown, path: string): LightroomApiError {
  const kind = transientFailureKind(error)
  return new LightroomApiError({
    statusCode: kind === 'timeout' ? 504 : 502,
    lightroomCode: kind === 'timeout' ? 'LR_API_TIMEOUT' : 'LR_API_UNREACHABLE',
    path,
    transient: kind !== undefined,
    // undici's errors never quote request headers, so the bearer token cannot be in here.
    cause: error
  })
}

/** Lightroom text goes into messages and logs: cut it short and blank out any token we sent. */
function scrub (text: string, secrets: string[]): string {
  let out = text
  for (const secret of secrets) out = out.split(secret).join('[redacted]')
  return out.length > MAX_ECHOED_CHARS ? `${out.slice(0, MAX_ECHOED_CHARS)}…` : out
}

/**
 * The origin a base URL stands for; throws TypeError unless it is an origin only, and https unless
 * it is the loopback (the mock Lightroom): the bearer token goes wherever this points. Exported so
 * that option validation can reject a bad `lightroomBaseUrl` at registration.
 */
export function lightroomOrigin (baseUrl: string): string {
  const url = URL.canParse(baseUrl) ? new URL(baseUrl) : undefined
  const loopback = url !== undefined && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)
  if (url === undefined || !(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) {
    throw new TypeError('LightroomClient: `baseUrl` must be an https URL (plain http only to localhost)')
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError('LightroomClient: `baseUrl` must be an origin only, such as https://lr.adobe.io')
  }
  return url.origin
}

function checkedNumber (name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value < min) throw new TypeError(`LightroomClient: \`${name}\` must be a number >= ${min}`)
  return value
}

/**
 * Every request to Lightroom goes through here: the origin check (the bearer token never leaves
 * the configured Lightroom origin), the API key and bearer token, the app-wide concurrency cap, one
 * forced token refresh after a 401 or a 403 `4300`, and retries of 429 / 5xx / timeouts / resets
 * with backoff honouring Retry-After. Bodies are read whole, except a 2xx asked for as a stream,
 * which the caller gets as undici's own Readable and which holds its slot until it ends.
 */
import { lightroomRequestChannel, traced } from '../diagnostics/channels.js'
import type { Readable } from 'node:stream'
import { request } from 'undici'
import type { Dispatcher } from 'undici'
import { LightroomApiError } from '../errors.js'
import { sharedDispatcher } from '../http/request.js'
import { FINAL, retry } from '../http/retry.js'
import type { RetryPolicy } from '../http/retry.js'
import { tryParseLightroomBody } from './body.js'
import { httpError, transportError, wantsRefresh } from './failures.js'
import type { ConcurrencyLimit } from './limiter.js'

export interface AccessTokenOptions {
  force?: boolean
  rejectedAccessToken?: string
}

export type AccessTokenSource = (options?: AccessTokenOptions) => Promise<string>

export interface TransportOptions {
  origin: string
  apiKey: string
  accessToken: AccessTokenSource
  dispatcher: Dispatcher | undefined
  timeoutMs: number
  retry: RetryPolicy
  limiter: ConcurrencyLimit
}

export interface Exchange {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST'
  /** Absolute; refused unless on the configured origin, under /v2/. */
  url: string
  /** Send the bearer token (all but health). */
  auth: boolean
  headers?: Record<string, string> | undefined
  /** Kept whole so that a retry can send it again. */
  body?: Buffer | string | undefined
  signal?: AbortSignal | undefined
  /** A 2xx answer's body is handed over unread (renditions). */
  stream?: boolean | undefined
  /** No cap on the whole exchange, only on waiting for headers and on body inactivity (uploads, streams). */
  untimed?: boolean | undefined
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The parsed JSON body (prefix stripped); undefined when empty or not JSON. Unset for streams. */
  json: unknown
  /** The raw text, for callers that must tell "not JSON" from "empty". Unset for streams. */
  text: string
  /** Only for `stream` exchanges answered 2xx. */
  stream?: Readable | undefined
  /** The exchange's path, for error messages. */
  path: string
  /** The tokens this exchange sent, to blank out of any error made from it. */
  sent: string[]
}

export class LightroomTransport {
  readonly origin: string
  readonly apiKey: string
  readonly #options: TransportOptions

  constructor (options: TransportOptions) {
    this.origin = options.origin
    this.apiKey = options.apiKey
    this.#options = options
  }

  /** The path of a URL on our origin under /v2/, or undefined for anything else. */
  apiPath (url: string): string | undefined {
    const parsed = URL.canParse(url) ? new URL(url) : undefined
    if (parsed === undefined || parsed.origin !== this.origin || !parsed.pathname.startsWith('/v2/')) return undefined
    if (parsed.username !== '' || parsed.password !== '' || parsed.hash !== '') return undefined
    return parsed.pathname
  }

  /**
   * Sends until the answer is final and resolves it whatever its status, except that transient
   * answers that outlast the retries, and a second 401/4300, reject as LightroomApiError.
   */
  async exchange (ex: Exchange): Promise<Answer> {
    const path = this.apiPath(ex.url)
    if (path === undefined) {
      throw new LightroomApiError({ statusCode: 502, lightroomCode: 'LR_API_FOREIGN_LINK', description: 'a URL outside the configured Lightroom origin was not called', method: ex.method, path: '(elsewhere)', transient: false })
    }
    return await traced(lightroomRequestChannel, { method: ex.method, path }, async () => await this.#exchange(ex, path))
  }

  async #exchange (ex: Exchange, path: string): Promise<Answer> {
    const sent: string[] = []
    let token = ex.auth ? await this.#options.accessToken() : undefined
    let refreshed = false
    return await retry(this.#options.retry, async () => {
      let answer = await this.#once(ex, path, token, sent)
      if (token !== undefined && !refreshed && wantsRefresh(answer.status, answer.json)) {
        // Expired or revoked early: refresh once (the token manager skips it if a peer already did)
        // and try again at once; this does not use up a retry.
        refreshed = true
        token = await this.#options.accessToken({ force: true, rejectedAccessToken: token })
        answer = await this.#once(ex, path, token, sent)
      }
      if (answer.status === 429 || answer.status >= 500) throw httpError(answer, ex.method, path, sent)
      if (token !== undefined && wantsRefresh(answer.status, answer.json)) throw httpError(answer, ex.method, path, sent)
      return answer
    }, (failure) => {
      if (ex.signal?.aborted === true) return FINAL
      return failure instanceof LightroomApiError ? failure : FINAL
    })
  }

  async #once (ex: Exchange, path: string, token: string | undefined, sent: string[]): Promise<Answer> {
    if (token !== undefined) sent.push(token)
    const release = await this.#options.limiter.acquire(ex.signal)
    let handedOver = false
    try {
      const { timeoutMs } = this.#options
      const timers = ex.untimed === true ? [] : [AbortSignal.timeout(timeoutMs)]
      const signals = ex.signal === undefined ? timers : [ex.signal, ...timers]
      const res = await request(ex.url, {
        method: ex.method,
        headers: this.#headers(token, ex.headers),
        body: ex.body,
        dispatcher: this.#options.dispatcher ?? sharedDispatcher(),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals)
      }).catch((error: unknown) => {
        if (ex.signal?.aborted === true) throw error
        throw transportError(error, ex.method, path)
      })
      if (ex.stream === true && res.statusCode >= 200 && res.statusCode < 300) {
        handedOver = true
        holdUntilDone(res.body, release)
        return { status: res.statusCode, headers: res.headers, json: undefined, text: '', stream: res.body, path, sent }
      }
      const text = await res.body.text().catch((error: unknown) => {
        if (ex.signal?.aborted === true) throw error
        throw transportError(error, ex.method, path)
      })
      return { status: res.statusCode, headers: res.headers, json: tryParseLightroomBody(text), text, path, sent }
    } finally {
      if (!handedOver) release()
    }
  }

  #headers (token: string | undefined, extra: Record<string, string> | undefined): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json', ...extra, 'x-api-key': this.apiKey }
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`
    return headers
  }
}

/** The slot goes back however the stream stops: read to the end, failed, or destroyed by a client that left. */
function holdUntilDone (body: Readable, release: () => void): void {
  body.once('end', release)
  body.once('error', release)
  body.once('close', release)
}

/**
 * The one way this package talks HTTP: a shared keep-alive undici Agent and
 * small helpers that always read the whole body (so the socket goes back to
 * the pool) and always carry explicit timeouts. When to retry is ./retry.ts.
 */
import { Agent, request } from 'undici'
import type { Dispatcher } from 'undici'
import { FINAL, isTransientStatus, parseRetryAfter, retry, transientFailureKind } from './retry.js'
import type { RetryPolicy } from './retry.js'

/** Idle sockets live a little while: token calls come in bursts, then stop. */
export const KEEP_ALIVE_TIMEOUT_MS = 10_000
/** Bounded so a refresh storm cannot open unlimited sockets to one origin. */
export const MAX_CONNECTIONS_PER_ORIGIN = 128
/** Sign-in calls (code exchange, userinfo, JWKS) get a pool of their own, this small: see services.ts. */
export const MAX_SIGN_IN_CONNECTIONS_PER_ORIGIN = 16

let shared: Agent | undefined

/** Created on first use so that importing the package opens nothing. */
export function sharedDispatcher (): Dispatcher {
  shared ??= new Agent({
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    connections: MAX_CONNECTIONS_PER_ORIGIN
  })
  return shared
}

/** Closes the shared Agent (plugin onClose, tests); the next call makes a new one. */
export async function closeSharedDispatcher (): Promise<void> {
  const agent = shared
  shared = undefined
  if (agent !== undefined) await agent.close()
}

export interface CallOptions {
  /** Bounds headers, body inactivity and the whole call alike. */
  timeoutMs: number
  dispatcher?: Dispatcher | undefined
  headers?: Record<string, string> | undefined
  /** The caller's own abort (jose's JWKS timeout), on top of timeoutMs. */
  signal?: AbortSignal | undefined
}

export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The complete body; always read so keep-alive sockets are reused. */
  text: string
}

async function call (url: string, method: 'GET' | 'POST', body: string | undefined, opts: CallOptions): Promise<HttpResponse> {
  const res = await request(url, {
    method,
    body,
    headers: opts.headers,
    dispatcher: opts.dispatcher ?? sharedDispatcher(),
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    // headers/body timeouts are per phase and coarse above 1 s; this caps the total.
    signal: opts.signal === undefined
      ? AbortSignal.timeout(opts.timeoutMs)
      : AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)])
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text }
}

/** POST an application/x-www-form-urlencoded body; undefined fields are left out. */
export async function formPost (url: string, fields: Record<string, string | undefined>, opts: CallOptions): Promise<HttpResponse> {
  const form = new URLSearchParams()
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) form.set(name, value)
  }
  return await call(url, 'POST', form.toString(), {
    ...opts,
    headers: { ...opts.headers, 'content-type': 'application/x-www-form-urlencoded' }
  })
}

export async function get (url: string, opts: CallOptions): Promise<HttpResponse> {
  return await call(url, 'GET', undefined, opts)
}

export function headerValue (res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** Carries a 429/5xx answer through retry(), which retries failures only. */
class TransientAnswer extends Error {
  constructor (readonly response: HttpResponse) {
    super(`HTTP ${response.status}`)
  }
}

/**
 * GET, tried again after a 429, a 5xx, a timeout or a reset. Resolves the
 * last answer whatever its status, for the caller to judge; rejects with the
 * last transport failure. Once the caller's signal has fired, nothing is
 * retried: it has stopped waiting.
 */
export async function getWithRetries (url: string, opts: CallOptions, policy: RetryPolicy): Promise<HttpResponse> {
  try {
    return await retry(policy, async () => {
      const res = await get(url, opts)
      if (isTransientStatus(res.status)) throw new TransientAnswer(res)
      return res
    }, (failure) => {
      if (opts.signal?.aborted === true) return FINAL
      if (failure instanceof TransientAnswer) {
        return { transient: true, retryAfterSeconds: parseRetryAfter(headerValue(failure.response, 'retry-after'), Date.now()) }
      }
      return { transient: transientFailureKind(failure) !== undefined }
    })
  } catch (failure) {
    if (failure instanceof TransientAnswer) return failure.response
    throw failure
  }
}

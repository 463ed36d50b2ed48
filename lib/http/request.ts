/**
 * The one way this package talks HTTP: a shared keep-alive undici Agent and
 * two tiny helpers that always read the whole body (so the socket goes back
 * to the pool) and always carry explicit timeouts.
 */
import { Agent, request } from 'undici'
import type { Dispatcher } from 'undici'

/** Idle sockets live a little while: token calls come in bursts, then stop. */
export const KEEP_ALIVE_TIMEOUT_MS = 10_000
/** Bounded so a refresh storm cannot open unlimited sockets to one origin. */
export const MAX_CONNECTIONS_PER_ORIGIN = 128

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
    signal: AbortSignal.timeout(opts.timeoutMs)
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

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'
])
const NETWORK_CODES = new Set([
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE',
  'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN'
])

/**
 * Names a transport failure that may well succeed if tried again, or
 * undefined for anything else (bad URL, TLS rejection, a bug), which retrying
 * within seconds would not fix.
 */
export function transientFailureKind (err: unknown): 'timeout' | 'network' | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  if ((err as { name?: unknown }).name === 'TimeoutError') return 'timeout'
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') {
    if (TIMEOUT_CODES.has(code)) return 'timeout'
    if (NETWORK_CODES.has(code)) return 'network'
  }
  // Node's happy-eyeballs connect reports every address tried in one AggregateError.
  if (err instanceof AggregateError) return transientFailureKind(err.errors[0])
  return undefined
}

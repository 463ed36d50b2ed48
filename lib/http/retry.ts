/**
 * Retrying, written once: which failures may pass if tried again, how long to
 * wait before the next try, and the loop itself. The IMS client, the
 * Lightroom client, discovery and the JWKS fetch each bring their own budget.
 */
import { setTimeout as delay } from 'node:timers/promises'

export interface RetryPolicy {
  /** Extra attempts after the first, transient failures only; 0 means one call. */
  retries: number
  /** First backoff step; doubles on each retry. */
  baseDelayMs: number
  /** Cap for one wait, backoff and Retry-After alike. */
  maxDelayMs: number
  /** Injectable for tests, to record waits instead of making them. */
  sleep?: ((ms: number) => Promise<void>) | undefined
}

/** What a failure says about trying again. ImsError and LightroomApiError have this shape. */
export interface Transience {
  transient: boolean
  /** From the server's Retry-After header. */
  retryAfterSeconds?: number | undefined
}

/** For classifiers: a failure that another try would not fix. */
export const FINAL: Transience = { transient: false }

/**
 * Runs `attempt` until it resolves, it fails in a way `classify` calls final,
 * or `policy.retries` retries are spent; then rethrows the last failure as is.
 * Each retry's attempt receives the failure that caused it: a caller may need
 * to know that an earlier try could have reached the server.
 */
export async function retry<T> (
  policy: RetryPolicy,
  attempt: (previousFailure: unknown) => Promise<T>,
  classify: (failure: unknown) => Transience
): Promise<T> {
  const sleep = policy.sleep ?? defaultSleep
  let previous: unknown
  for (let n = 0; ; n++) {
    try {
      return await attempt(previous)
    } catch (failure) {
      const verdict = classify(failure)
      if (!verdict.transient || n >= policy.retries) throw failure
      previous = failure
      await sleep(retryDelay(policy, n, verdict.retryAfterSeconds))
    }
  }
}

async function defaultSleep (ms: number): Promise<void> {
  await delay(ms)
}

/**
 * The wait before retry `n` (0-based). The server's Retry-After wins when
 * present (it knows best), capped so a hostile or mistaken header cannot
 * stall us. Otherwise exponential backoff with "equal jitter": half the step
 * fixed, half random, so instances that failed together spread out but still
 * back off.
 */
export function retryDelay (policy: RetryPolicy, n: number, retryAfterSeconds: number | undefined): number {
  if (retryAfterSeconds !== undefined) return Math.min(retryAfterSeconds * 1000, policy.maxDelayMs)
  const step = Math.min(policy.baseDelayMs * 2 ** n, policy.maxDelayMs)
  return Math.round(step / 2 + Math.random() * step / 2)
}

/** 429 says "not now", 5xx "not us": both may pass. Other statuses will not change on retry. */
export function isTransientStatus (status: number): boolean {
  return status === 429 || status >= 500
}

/** Retry-After is either delta-seconds or an HTTP date; anything else is ignored. */
export function parseRetryAfter (value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  // Every HTTP-date form starts with a day name; Date.parse alone would accept "-5" or "1.5".
  if (!/^(?:mon|tue|wed|thu|fri|sat|sun)/i.test(trimmed)) return undefined
  const at = Date.parse(trimmed)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, Math.ceil((at - now) / 1000))
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

import { test } from 'tap'
import { FINAL, isTransientStatus, parseRetryAfter, retry, retryDelay, transientFailureKind } from '../lib/http/retry.js'
import type { RetryPolicy, Transience } from '../lib/http/retry.js'

type Tap = Parameters<Parameters<typeof test>[0]>[0]

/** A failure the classifier below understands. */
class Failure extends Error implements Transience {
  constructor (readonly transient: boolean, readonly retryAfterSeconds?: number) {
    super(transient ? 'transient' : 'final')
  }
}
const classify = (failure: unknown): Transience => failure instanceof Failure ? failure : FINAL

function policy (extra: Partial<RetryPolicy> = {}): { policy: RetryPolicy, waits: number[] } {
  const waits: number[] = []
  return { policy: { retries: 3, baseDelayMs: 100, maxDelayMs: 1000, sleep: async (ms) => { waits.push(ms) }, ...extra }, waits }
}

/** Math.random pinned for the rest of the test, to see both ends of the jitter. */
function pinRandom (t: Tap, value: number): void {
  const real = Math.random
  Math.random = () => value
  t.teardown(() => { Math.random = real })
}

test('resolves the first success; failures before it are waited out', async (t) => {
  const { policy: p, waits } = policy()
  let calls = 0
  const value = await retry(p, async () => {
    calls++
    if (calls < 3) throw new Failure(true)
    return 'ok'
  }, classify)
  t.equal(value, 'ok')
  t.equal(calls, 3)
  t.equal(waits.length, 2, 'one wait before each retry, none after the success')
})

test('retries transient failures at most `retries` times, then rethrows the last one as is', async (t) => {
  const { policy: p, waits } = policy({ retries: 2 })
  const thrown: Failure[] = []
  const error = await retry(p, async () => {
    const failure = new Failure(true)
    thrown.push(failure)
    throw failure
  }, classify).catch((err: unknown) => err)
  t.equal(thrown.length, 3, 'retries + 1 attempts')
  t.equal(error, thrown[2], 'the last failure, not a wrapper')
  t.equal(waits.length, 2)

  const { policy: none, waits: noWaits } = policy({ retries: 0 })
  let calls = 0
  await t.rejects(retry(none, async () => { calls++; throw new Failure(true) }, classify))
  t.equal(calls, 1, 'retries: 0 means one call')
  t.same(noWaits, [])
})

test('a final failure, or one the classifier does not know, is not retried', async (t) => {
  const { policy: p, waits } = policy()
  let calls = 0
  await t.rejects(retry(p, async () => { calls++; throw new Failure(false) }, classify), { message: 'final' })
  await t.rejects(retry(p, async () => { calls++; throw new TypeError('a bug') }, classify), TypeError)
  t.equal(calls, 2)
  t.same(waits, [])
})

test('each retry is handed the failure that caused it', async (t) => {
  const { policy: p } = policy()
  const first = new Failure(true)
  const seen: unknown[] = []
  await retry(p, async (previous) => {
    seen.push(previous)
    if (seen.length === 1) throw first
    return 'ok'
  }, classify)
  t.same(seen, [undefined, first])
  t.equal(seen[1], first)
})

test('backoff doubles from baseDelayMs, with equal jitter, and is capped at maxDelayMs', async (t) => {
  const p: RetryPolicy = { retries: 5, baseDelayMs: 100, maxDelayMs: 500 }
  pinRandom(t, 0)
  t.same([0, 1, 2, 3, 4].map((n) => retryDelay(p, n, undefined)), [50, 100, 200, 250, 250], 'lowest: half of each step')
  pinRandom(t, 0.999999)
  t.same([0, 1, 2, 3, 4].map((n) => retryDelay(p, n, undefined)), [100, 200, 400, 500, 500], 'highest: the whole step, never above the cap')
})

test('jitter spreads waits within [step / 2, step]', async (t) => {
  const { policy: p, waits } = policy({ retries: 200, baseDelayMs: 1000, maxDelayMs: 1000 })
  let calls = 0
  await t.rejects(retry(p, async () => { calls++; throw new Failure(true) }, classify))
  t.equal(calls, 201)
  t.ok(waits.every((ms) => ms >= 500 && ms <= 1000), 'all within bounds')
  t.ok(new Set(waits).size > 10, 'and not all alike')
})

test('Retry-After wins over backoff, and is capped at maxDelayMs', async (t) => {
  const { policy: p, waits } = policy({ retries: 3, baseDelayMs: 100, maxDelayMs: 5000 })
  const failures = [new Failure(true, 2), new Failure(true, 3600), new Failure(true, 0)]
  await retry(p, async () => {
    const failure = failures.shift()
    if (failure !== undefined) throw failure
    return 'ok'
  }, classify)
  t.same(waits, [2000, 5000, 0])
})

test('without an injected sleep it really waits', async (t) => {
  let calls = 0
  const started = Date.now()
  await retry({ retries: 1, baseDelayMs: 40, maxDelayMs: 40 }, async () => {
    if (++calls === 1) throw new Failure(true)
  }, classify)
  t.ok(Date.now() - started >= 15, 'at least half the step')
})

test('429 and 5xx are transient statuses; 408 and other 4xx are not', async (t) => {
  t.same([429, 500, 502, 503, 504].map(isTransientStatus), [true, true, true, true, true])
  t.same([200, 302, 400, 401, 403, 404, 408].map(isTransientStatus), [false, false, false, false, false, false, false])
})

test('Retry-After: delta-seconds or an HTTP date, anything else ignored', async (t) => {
  const now = Date.UTC(2025, 0, 15, 12, 0, 0)
  t.equal(parseRetryAfter(undefined, now), undefined)
  t.equal(parseRetryAfter(' 120 ', now), 120)
  t.equal(parseRetryAfter('Wed, 15 Jan 2025 12:00:30 GMT', now), 30)
  t.equal(parseRetryAfter('Wednesday, 15-Jan-25 12:00:10 GMT', now), 10, 'the obsolete RFC 850 form')
  t.equal(parseRetryAfter('Wed, 15 Jan 2025 11:00:00 GMT', now), 0, 'a date in the past means now')
  t.equal(parseRetryAfter('soon', now), undefined)
  t.equal(parseRetryAfter('-5', now), undefined)
  t.equal(parseRetryAfter('1.5', now), undefined)
  t.equal(parseRetryAfter('Wed, 99 Foo 2025', now), undefined)
})

test('transport failures worth retrying are named, the rest are not', async (t) => {
  const coded = (code: unknown): Error => Object.assign(new Error('x'), { code })
  t.equal(transientFailureKind(new DOMException('aborted', 'TimeoutError')), 'timeout')
  t.equal(transientFailureKind(coded('UND_ERR_CONNECT_TIMEOUT')), 'timeout')
  t.equal(transientFailureKind(coded('ETIMEDOUT')), 'timeout')
  t.equal(transientFailureKind(coded('ECONNRESET')), 'network')
  t.equal(transientFailureKind(coded('EAI_AGAIN')), 'network')
  t.equal(transientFailureKind(new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')])), 'network', 'happy eyeballs')
  t.equal(transientFailureKind(new AggregateError([])), undefined)
  t.equal(transientFailureKind(coded('CERT_HAS_EXPIRED')), undefined, 'TLS will not fix itself in seconds')
  t.equal(transientFailureKind(coded(42)), undefined)
  t.equal(transientFailureKind(new TypeError('Invalid URL')), undefined)
  t.equal(transientFailureKind('ECONNRESET'), undefined)
  t.equal(transientFailureKind(null), undefined)
})

// The Lightroom API client against the mock Lightroom and the mock IMS over
// real HTTP, with tokens from a user signed in through the real plugin.
import { inspect } from 'node:util'
import tap, { test } from 'tap'
import { Agent, request } from 'undici'
import type { Dispatcher } from 'undici'
import { LightroomAuthError } from '../lib/errors.js'
import { LightroomClient, isEntitled } from '../lib/lightroom/client.js'
import { LightroomApiError } from '../lib/errors.js'
import type { AccessTokenOptions, LightroomAccount, LightroomClientOptions } from '../lib/lightroom/client.js'
import { createMockLightroom } from '../lib/testing/index.js'
import type { MockLightroom, MockLightroomOptions } from '../lib/testing/index.js'
import { harness, signIn } from './helpers/setup.js'

type Tap = Parameters<Parameters<typeof test>[0]>[0]

const API_KEY = 'test-client'
const PREFIX = 'while (1) {}\n'

// One app and one signed-in user for the whole file; each test gets its own mock Lightroom.
const h = await harness()
await signIn(h.browser())
const sub = h.ims.users[0]!.sub
const agent = new Agent()
tap.teardown(async () => {
  await agent.close()
  await h.close()
})

/** Every token any test used, to make sure none ends up in an error. */
const usedTokens = new Set<string>()

interface Setup {
  lr: MockLightroom
  client: LightroomClient
  sleeps: number[]
  tokenCalls: AccessTokenOptions[]
}

async function setup (t: Tap, options: { client?: Partial<LightroomClientOptions>, lr?: Omit<MockLightroomOptions, 'ims'> } = {}): Promise<Setup> {
  const lr = await createMockLightroom({ ims: h.ims, ...options.lr })
  t.teardown(() => lr.close())
  const sleeps: number[] = []
  const tokenCalls: AccessTokenOptions[] = []
  const client = new LightroomClient({
    baseUrl: lr.origin,
    apiKey: API_KEY,
    accessToken: async (getOptions) => {
      tokenCalls.push(getOptions ?? {})
      const token = await h.app.lightroom.tokenFor(sub, getOptions)
      usedTokens.add(token)
      return token
    },
    dispatcher: agent,
    sleep: async (ms) => { sleeps.push(ms) },
    ...options.client
  })
  return { lr, client, sleeps, tokenCalls }
}

/** Awaits a rejection, checks it is a LightroomApiError and that no token shows anywhere in it. */
async function apiFailure (t: Tap, promise: Promise<unknown>): Promise<LightroomApiError> {
  const error = await promise.then(() => undefined, (err: unknown) => err)
  t.type(error, LightroomApiError)
  const text = `${(error as Error).message}\n${inspect(error, { depth: 5 })}`
  const leaked = [...usedTokens, ...h.ims.issuedSecrets()].filter((secret) => text.includes(secret))
  t.same(leaked, [], 'no token in the error')
  return error as LightroomApiError
}

async function revokeAtIms (token: string): Promise<void> {
  const form = new URLSearchParams({ token, token_type_hint: 'access_token', client_id: API_KEY, client_secret: 'test-secret' })
  const res = await request(`${h.ims.origin}/ims/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() })
  await res.body.text()
}

test('health sends the API key only: no bearer, no token call', async (t) => {
  const { lr, client, tokenCalls } = await setup(t)
  t.same(await client.health(), { version: 'mock-lightroom', status: 'ok' }, 'prefix stripped')
  t.same(tokenCalls, [])
  t.same(lr.requests(), [{ endpoint: 'health', method: 'GET', path: '/v2/health', apiKey: API_KEY, accept: 'application/json', accessToken: undefined }])
})

test('account: key and bearer sent, prefix stripped, typed body', async (t) => {
  const { lr, client, tokenCalls } = await setup(t)
  const account: LightroomAccount = await client.account()
  t.match(account, { id: lr.accountId(sub), type: 'account', email: 'ada@example.com', first_name: 'Ada', entitlement: { status: 'subscriber', storage: { used: Number, limit: Number } } })
  t.equal(isEntitled(account), true)
  t.same(tokenCalls, [{}])
  t.same(lr.requests(), [{ endpoint: 'account', method: 'GET', path: '/v2/account', apiKey: API_KEY, accept: 'application/json', accessToken: await h.app.lightroom.tokenFor(sub) }])
})

test('isEntitled: only trial and subscriber', async (t) => {
  const { lr, client } = await setup(t)
  const verdicts: Record<string, boolean> = {}
  for (const entitlement of ['created', 'trial', 'trial_expired', 'subscriber', 'subscriber_expired'] as const) {
    lr.setUser(sub, { entitlement })
    verdicts[entitlement] = isEntitled(await client.account())
  }
  t.same(verdicts, { created: false, trial: true, trial_expired: false, subscriber: true, subscriber_expired: false })
  t.equal(isEntitled({} as LightroomAccount), false, 'no entitlement at all: not entitled')
})

test('catalog: the catalog, or null when the user has none', async (t) => {
  const { lr, client } = await setup(t)
  t.match(await client.catalog(), { id: lr.catalogId(sub), type: 'catalog', subtype: 'lightroom', payload: { name: "Ada's Catalog" } })
  lr.setUser(sub, { hasCatalog: false })
  t.equal(await client.catalog(), null)
  t.equal(lr.count('catalog:404'), 1, 'a 404 is not retried')
})

test('a 404 that is not Lightroom JSON (wrong base URL, gateway page) is an error, not "no catalog"', async (t) => {
  const { lr, client } = await setup(t)
  lr.fail('catalog', { status: 404, body: '<html>Not Found</html>' })
  const error = await apiFailure(t, client.catalog())
  t.match(error, { statusCode: 404, code: 'LR_API_ERROR', lightroomCode: 'LR_API_HTTP_ERROR', path: '/v2/catalog', transient: false })
})

test('error bodies lose their prefix too: a bad API key is 403 code 403003, not retried, no refresh', async (t) => {
  const { lr, client, tokenCalls } = await setup(t, { client: { apiKey: 'unknown-key' } })
  const error = await apiFailure(t, client.account())
  t.match(error, { name: 'LightroomApiError', statusCode: 403, code: 'LR_API_ERROR', lightroomCode: '403003', description: 'Api Key is invalid', path: '/v2/account', transient: false })
  t.equal(error.message, 'Lightroom GET /v2/account failed: 403 403003 (Api Key is invalid)')
  t.equal(lr.count('account'), 1)
  t.same(tokenCalls, [{}])
  const health = await apiFailure(t, client.health())
  t.equal(health.lightroomCode, '403003')
})

test('429 with an empty body is retried with exponential backoff, then succeeds', async (t) => {
  const { lr, client, sleeps } = await setup(t, { client: { retryBaseDelayMs: 100 } })
  lr.fail('account', { status: 429 }, 2)
  t.equal((await client.account()).type, 'account')
  t.equal(lr.count('account:429'), 2)
  t.equal(lr.count('account:200'), 1)
  t.equal(sleeps.length, 2)
  t.ok(sleeps[0]! >= 50 && sleeps[0]! <= 100, `first wait ${sleeps[0]} in [50, 100]`)
  t.ok(sleeps[1]! >= 100 && sleeps[1]! <= 200, `second wait ${sleeps[1]} in [100, 200]`)
})

test('5xx are retried, JSON or HTML', async (t) => {
  const { lr, client, sleeps } = await setup(t)
  lr.fail('catalog', { status: 500 })
  lr.fail('catalog', { status: 502, body: '<html>Bad Gateway</html>' })
  lr.fail('catalog', { status: 503 })
  t.equal((await client.catalog())?.type, 'catalog')
  t.equal(lr.count('catalog'), 4)
  t.equal(sleeps.length, 3)
})

test('the retry budget: retries + 1 calls, then the last answer as an error', async (t) => {
  const { lr, client, sleeps } = await setup(t)
  lr.fail('account', { status: 429 }, 10)
  const limited = await apiFailure(t, client.account())
  t.match(limited, { statusCode: 429, code: 'LR_API_ERROR', lightroomCode: 'LR_API_HTTP_ERROR', transient: true, description: undefined })
  t.equal(lr.count('account'), 4, 'default 3 retries')
  t.equal(sleeps.length, 3)

  lr.clearFaults()
  lr.resetCounts()
  lr.fail('account', { status: 503 }, 10)
  const down = await apiFailure(t, client.account())
  t.match(down, { statusCode: 503, code: 'LR_API_ERROR', lightroomCode: '503', description: 'Service Unavailable', transient: true })
  t.equal(lr.count('account'), 4)

  const { lr: lr2, client: once } = await setup(t, { client: { retries: 0 } })
  lr2.fail('account', { status: 500 }, 2)
  t.equal((await apiFailure(t, once.account())).statusCode, 500)
  t.equal(lr2.count('account'), 1, 'retries: 0 means one call')
})

test('Retry-After is honoured, capped by maxRetryDelayMs, and reported on the final error', async (t) => {
  const { lr, client, sleeps } = await setup(t, { client: { retries: 2 } })
  lr.fail('account', { status: 429, retryAfter: 2 })
  lr.fail('account', { status: 503, retryAfter: 60 })
  lr.fail('account', { status: 503, retryAfter: 7 })
  const error = await apiFailure(t, client.account())
  t.same(sleeps, [2000, 8000], 'Retry-After in ms; 60 s capped at 8 s')
  t.equal(error.retryAfterSeconds, 7)
})

test('401: exactly one forced refresh with the rejected token, then success with the new token', async (t) => {
  const { lr, client, tokenCalls, sleeps } = await setup(t, { lr: { rejectedTokenStatus: 401 } })
  const old = await h.app.lightroom.tokenFor(sub)
  usedTokens.add(old)
  await revokeAtIms(old)
  const refreshes = h.ims.count('token:refresh_token')
  t.equal((await client.account()).type, 'account')
  t.same(tokenCalls, [{}, { force: true, rejectedAccessToken: old }])
  t.equal(h.ims.count('token:refresh_token'), refreshes + 1, 'one refresh at IMS')
  t.equal(lr.count('account:401'), 1)
  t.equal(lr.count('account:200'), 1)
  const [first, second] = lr.requests()
  t.equal(first?.accessToken, old)
  t.not(second?.accessToken, old, 'retried with the refreshed token')
  t.equal(h.ims.introspect(second!.accessToken!).active, true)
  t.same(sleeps, [], 'no backoff before the retry after a refresh')
})

test('401 twice: one refresh only, then LightroomApiError 401 with the gateway code', async (t) => {
  const forced: AccessTokenOptions[] = []
  const { lr, client } = await setup(t, {
    client: {
      accessToken: async (options) => {
        if (options?.force === true) forced.push(options)
        return options?.force === true ? 'eyJ.still-unknown.sig' : 'eyJ.never-issued.sig'
      }
    },
    lr: { rejectedTokenStatus: 401 }
  })
  usedTokens.add('eyJ.still-unknown.sig').add('eyJ.never-issued.sig')
  const error = await apiFailure(t, client.account())
  t.match(error, { statusCode: 401, code: 'LR_API_ERROR', lightroomCode: '401013', description: 'Oauth token is not valid', transient: false })
  t.same(forced, [{ force: true, rejectedAccessToken: 'eyJ.never-issued.sig' }])
  t.equal(lr.count('account:401'), 2)
})

test('a 401 after retries still gets its one refresh; retries and refresh are counted apart', async (t) => {
  const { lr, client, tokenCalls } = await setup(t, { client: { retries: 1 } })
  lr.fail('account', { status: 503 })
  lr.fail('account', { status: 401, body: `${PREFIX}{"error_code":"401013","message":"Oauth token is not valid"}` })
  t.equal((await client.account()).type, 'account')
  t.equal(tokenCalls.filter((call) => call.force === true).length, 1)
  t.equal(lr.count('account'), 3)
})

test('a token Lightroom echoes back in an error is blanked out', async (t) => {
  const token = 'eyJ.echoed-token.sig'
  usedTokens.add(token)
  const { lr, client } = await setup(t, { client: { accessToken: async () => token } })
  lr.fail('account', { status: 400, body: `${PREFIX}{"code":"${token}","description":"bad token ${token} ${'x'.repeat(300)}"}` })
  const error = await apiFailure(t, client.account())
  t.equal(error.lightroomCode, '[redacted]')
  t.match(error.description, /^bad token \[redacted\] x+…$/)
  t.equal(error.description!.length, 201, 'cut at 200 characters')
})

test('timeouts and resets on GET are retried; when they persist: 504 LR_API_TIMEOUT, 502 LR_API_UNREACHABLE', async (t) => {
  // Generous timeout: the attempt after the slow one must finish in time even on a busy machine.
  const { lr, client, sleeps } = await setup(t, { client: { timeoutMs: 250, retries: 1 } })
  lr.fail('account', { delayMs: 5000 })
  t.equal((await client.account()).type, 'account', 'a timeout, then success')
  lr.fail('account', { reset: true })
  t.equal((await client.account()).type, 'account', 'a reset, then success')
  t.equal(sleeps.length, 2)

  lr.fail('account', { delayMs: 5000 }, 2)
  const slow = await apiFailure(t, client.account())
  t.match(slow, { statusCode: 504, code: 'LR_API_ERROR', lightroomCode: 'LR_API_TIMEOUT', transient: true, path: '/v2/account' })
  lr.fail('account', { reset: true }, 2)
  const gone = await apiFailure(t, client.account())
  t.match(gone, { statusCode: 502, code: 'LR_API_ERROR', lightroomCode: 'LR_API_UNREACHABLE', transient: true })
})

test('a transport failure that retrying cannot fix fails at once', async (t) => {
  const broken = { dispatch () { throw new Error('no dispatcher here') } } as unknown as Dispatcher
  const { client, sleeps } = await setup(t, { client: { dispatcher: broken } })
  const error = await apiFailure(t, client.health())
  t.match(error, { statusCode: 502, code: 'LR_API_ERROR', lightroomCode: 'LR_API_UNREACHABLE', transient: false })
  t.same(sleeps, [])
})

test('get(): relative paths under /v2/ only; anything else is refused before any token or request', async (t) => {
  const { lr, client, tokenCalls } = await setup(t)
  const refused = ['https://evil.example/x', '//evil', '//evil/v2/account', 'v2/account', '/v2/../admin', '/v2/%2e%2e/x/../y', '/v2/\\evil', '/v2/a b', '/v1/account', '']
  for (const path of refused) {
    await t.rejects(client.get(path), TypeError, `refused: ${JSON.stringify(path)}`)
  }
  await t.rejects(client.get(42 as unknown as string), TypeError)
  t.equal(lr.count('*'), 0, 'no request')
  t.same(tokenCalls, [], 'no token fetched')

  t.match(await client.get<LightroomAccount>('/v2/account'), { type: 'account' })
  const missing = await apiFailure(t, client.get(`/v2/catalogs/${lr.catalogId(sub)}/nothing?limit=10`))
  t.match(missing, { statusCode: 404, code: 'LR_API_ERROR', lightroomCode: '1000', description: 'Resource not found' })
})

test('2xx answers that are not what they should be: LR_API_INVALID_RESPONSE; an empty body is null', async (t) => {
  const { lr, client } = await setup(t)
  lr.fail('account', { status: 200, body: '<html>Sign in</html>' })
  t.match(await apiFailure(t, client.account()), { statusCode: 502, code: 'LR_API_ERROR', lightroomCode: 'LR_API_INVALID_RESPONSE', description: 'the body is not JSON', transient: false })
  lr.fail('account', { status: 200, body: `${PREFIX}[1, 2]` })
  t.match(await apiFailure(t, client.account()), { statusCode: 502, code: 'LR_API_ERROR', lightroomCode: 'LR_API_INVALID_RESPONSE', description: 'the body is not a Lightroom resource' })
  lr.fail('catalog', { status: 200, body: `${PREFIX}{"type":"catalog"}` })
  t.match(await apiFailure(t, client.catalog()), { code: 'LR_API_ERROR', lightroomCode: 'LR_API_INVALID_RESPONSE' })
  lr.fail('account', { status: 200, body: '' })
  t.equal(await client.get('/v2/account'), null)
})

test('a token that cannot be had rejects with the token manager\'s own error, before any request', async (t) => {
  const { lr, client } = await setup(t, { client: { accessToken: async (options) => await h.app.lightroom.tokenFor('nobody@AdobeID', options) } })
  await t.rejects(client.account(), LightroomAuthError)
  await t.rejects(client.catalog(), { code: 'LR_LOGIN_REQUIRED', statusCode: 401 })
  t.equal(lr.count('*'), 0)
})

test('without an injected sleep the client really waits', async (t) => {
  const { lr, client } = await setup(t, { client: { sleep: undefined, retryBaseDelayMs: 4 } })
  lr.fail('health', { status: 503 })
  t.same(await client.health(), { version: 'mock-lightroom', status: 'ok' })
})

test('constructor options are checked up front', async (t) => {
  const base = { apiKey: API_KEY, accessToken: async () => 'token' }
  t.doesNotThrow(() => new LightroomClient(base), 'https://lr.adobe.io by default')
  t.doesNotThrow(() => new LightroomClient({ ...base, baseUrl: 'https://lr.adobe.io/' }))
  t.doesNotThrow(() => new LightroomClient({ ...base, baseUrl: 'http://localhost:8080' }))
  const bad: Array<[Partial<LightroomClientOptions>, RegExp]> = [
    [{ baseUrl: 'http://lr.adobe.io' }, /https/],
    [{ baseUrl: 'not a url' }, /https/],
    [{ baseUrl: 'https://lr.adobe.io/v2/' }, /origin only/],
    [{ baseUrl: 'https://user:pw@lr.adobe.io' }, /origin only/],
    [{ apiKey: '' }, /apiKey/],
    [{ accessToken: 'token' as unknown as LightroomClientOptions['accessToken'] }, /accessToken/],
    [{ retries: -1 }, /retries/],
    [{ retries: 1.5 }, /retries.*integer/],
    [{ timeoutMs: 0 }, /timeoutMs/],
    [{ retryBaseDelayMs: Number.NaN }, /retryBaseDelayMs/],
    [{ maxRetryDelayMs: -5 }, /maxRetryDelayMs/]
  ]
  for (const [override, message] of bad) {
    t.throws(() => new LightroomClient({ ...base, ...override }), { name: 'TypeError', message }, JSON.stringify(override))
  }
})

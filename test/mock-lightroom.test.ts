// The mock Lightroom API on its own: bodies and prefix, authentication against
// the mock IMS, faults, counters and closing.
import { test } from 'tap'
import { request } from 'undici'
import { createMockIms, createMockLightroom } from '../lib/testing/index.js'
import type { MockIms, MockImsOptions, MockLightroom, MockLightroomOptions } from '../lib/testing/index.js'

type Tap = Parameters<Parameters<typeof test>[0]>[0]

const PREFIX = 'while (1) {}\n'
const CLIENT = { client_id: 'test-client', client_secret: 'test-secret' }

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

async function send (url: string, headers: Record<string, string> = {}, method: 'GET' | 'POST' = 'GET'): Promise<Reply> {
  const res = await request(url, { method, headers })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

/** Lightroom bodies are JSON behind the prefix; this insists on the prefix. */
function body (t: Tap, reply: Reply): Record<string, unknown> {
  t.ok(reply.text.startsWith(PREFIX), 'prefixed with while (1) {}')
  return JSON.parse(reply.text.slice(PREFIX.length)) as Record<string, unknown>
}

async function start (t: Tap, ims?: MockImsOptions, lr?: Omit<MockLightroomOptions, 'ims'>): Promise<{ ims: MockIms, lr: MockLightroom }> {
  const mockIms = await createMockIms(ims)
  const mock = await createMockLightroom({ ims: mockIms, ...lr })
  t.teardown(async () => { await mock.close(); await mockIms.close() })
  return { ims: mockIms, lr: mock }
}

/** A code flow straight against the mock IMS: authorize, then exchange the code. */
async function accessToken (ims: MockIms, client = CLIENT): Promise<string> {
  const query = new URLSearchParams({
    client_id: client.client_id, redirect_uri: 'https://app.example/cb', response_type: 'code', scope: 'openid,AdobeID,lr_partner_apis,offline_access', state: 's'
  })
  const authorize = await send(`${ims.origin}/ims/authorize/v2?${query}`)
  const code = new URL(authorize.headers.location as string).searchParams.get('code') as string
  const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'https://app.example/cb', ...client })
  const res = await request(`${ims.origin}/ims/token/v3`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() })
  return ((await res.body.json()) as { access_token: string }).access_token
}

function auth (token: string, apiKey = 'test-client'): Record<string, string> {
  return { 'x-api-key': apiKey, authorization: `Bearer ${token}` }
}

test('health needs the API key only; a missing or unknown key is 403 code 403003, prefixed', async (t) => {
  const { lr } = await start(t)
  const ok = await send(`${lr.origin}/v2/health`, { 'x-api-key': 'test-client' })
  t.equal(ok.status, 200)
  t.match(ok.headers['content-type'], /^application\/json/)
  t.same(body(t, ok), { version: 'mock-lightroom', status: 'ok' })
  for (const headers of [{}, { 'x-api-key': 'someone-else' }] as Array<Record<string, string>>) {
    const refused = await send(`${lr.origin}/v2/health`, headers)
    t.equal(refused.status, 403)
    t.same(body(t, refused), { code: '403003', description: 'Api Key is invalid' })
  }
})

test('/v2/account describes the token\'s user, with names and email from the mock IMS', async (t) => {
  const { ims, lr } = await start(t)
  const sub = ims.users[0]!.sub
  const reply = await send(`${lr.origin}/v2/account`, auth(await accessToken(ims)))
  t.equal(reply.status, 200)
  const account = body(t, reply)
  t.match(account, {
    base: `${lr.origin}/v2/`,
    id: lr.accountId(sub),
    type: 'account',
    email: 'ada@example.com',
    full_name: 'Ada Lovelace',
    first_name: 'Ada',
    last_name: 'Lovelace',
    country: 'US',
    created: String,
    updated: String,
    entitlement: {
      status: 'subscriber',
      current_subs: { store: 'adobe' },
      storage: { used: Number, limit: 1024 ** 4, display_limit: 1024 ** 4, warn: Number }
    },
    links: { self: { href: `v2/accounts/${lr.accountId(sub)}` } }
  })
  t.match(lr.accountId(sub), /^[0-9a-f]{32}$/)
  t.not(lr.accountId(sub), lr.catalogId(sub))
})

test('/v2/catalog answers the user\'s catalog, or 404 code 1000 for a user without one', async (t) => {
  const { ims, lr } = await start(t, { users: [{ sub: 'ada@AdobeID', name: 'Ada Lovelace', givenName: 'Ada' }, { sub: 'bob@AdobeID' }] },
    { users: { 'bob@AdobeID': { hasCatalog: false } } })
  const reply = await send(`${lr.origin}/v2/catalog`, auth(await accessToken(ims)))
  t.equal(reply.status, 200)
  t.match(body(t, reply), {
    base: `${lr.origin}/v2/`,
    id: lr.catalogId('ada@AdobeID'),
    type: 'catalog',
    subtype: 'lightroom',
    payload: { name: "Ada's Catalog" },
    links: { self: { href: `v2/catalogs/${lr.catalogId('ada@AdobeID')}` } }
  })
  ims.signInAs('bob@AdobeID')
  const bob = await accessToken(ims)
  const none = await send(`${lr.origin}/v2/catalog`, auth(bob))
  t.equal(none.status, 404)
  t.same(body(t, none), { code: 1000, description: 'Resource not found' })
  lr.setUser('bob@AdobeID', { hasCatalog: true })
  const created = body(t, await send(`${lr.origin}/v2/catalog`, auth(bob)))
  t.equal((created.payload as { name: string }).name, 'Lightroom Catalog', 'no name known: a neutral catalog name')
})

test('entitlement states and user overrides', async (t) => {
  const { ims, lr } = await start(t, { users: [{ sub: 'X1@AdobeID' }] })
  const token = await accessToken(ims)
  const account = async (): Promise<Record<string, any>> => body(t, await send(`${lr.origin}/v2/account`, auth(token)))
  const now = Date.now()

  lr.setUser('X1@AdobeID', { entitlement: 'trial' })
  const trial = await account()
  t.equal(trial.entitlement.status, 'trial')
  t.ok(Date.parse(trial.entitlement.trial.end) > now, 'a running trial ends in the future')
  t.notOk('current_subs' in trial.entitlement)
  t.equal(trial.email, 'x1@example.com', 'email made up from the sub when IMS has none')
  t.equal(trial.full_name, '')

  lr.setUser('X1@AdobeID', { entitlement: 'trial_expired', fullName: 'Grace Brewster Hopper', email: 'grace@example.org', country: 'DE' })
  const expired = await account()
  t.equal(expired.entitlement.status, 'trial_expired')
  t.ok(Date.parse(expired.entitlement.trial.end) < now)
  t.match(expired, { full_name: 'Grace Brewster Hopper', first_name: 'Grace', last_name: 'Brewster Hopper', email: 'grace@example.org', country: 'DE' })

  lr.setUser('X1@AdobeID', { entitlement: 'created' })
  const created = await account()
  t.same(Object.keys(created.entitlement), ['status', 'storage'])

  lr.setUser('X1@AdobeID', { entitlement: 'subscriber_expired' })
  const lapsed = await account()
  t.ok(Date.parse(lapsed.entitlement.current_subs.expiration_date) < now)
})

test('tokens: none is 401 401013; unknown, revoked or another client\'s is 403 4300 (401 401013 as an option); the key is checked first', async (t) => {
  for (const rejectedTokenStatus of [undefined, 401] as const) {
    const { ims, lr } = await start(t, { clients: [{ clientId: 'test-client', clientSecret: 'test-secret' }, { clientId: 'other', clientSecret: 'other-secret' }] }, rejectedTokenStatus === undefined ? {} : { rejectedTokenStatus })
    const token = await accessToken(ims)
    const invalid = { error_code: '401013', message: 'Oauth token is not valid' }
    const expected = rejectedTokenStatus === 401 ? { status: 401, body: invalid } : { status: 403, body: { error_code: '4300', message: 'Access is forbidden' } }
    const missing = await send(`${lr.origin}/v2/account`, { 'x-api-key': 'test-client' })
    t.equal(missing.status, 401)
    t.same(body(t, missing), invalid, 'no token at all: 401 whatever the option')
    const unknown = await send(`${lr.origin}/v2/account`, auth('eyJ.not-issued.sig'))
    t.equal(unknown.status, expected.status)
    t.same(body(t, unknown), expected.body)
    t.same(body(t, await send(`${lr.origin}/v2/account`, auth(token, 'other'))), expected.body, 'a token of test-client with the key of other')
    const keyFirst = await send(`${lr.origin}/v2/account`, auth(token, 'nope'))
    t.equal(keyFirst.status, 403)

    await request(`${ims.origin}/ims/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, ...CLIENT }).toString()
    }).then(async (res) => await res.body.text())
    const revoked = await send(`${lr.origin}/v2/account`, auth(token))
    t.equal(revoked.status, expected.status)
    t.same(body(t, revoked), expected.body)
  }
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  await t.rejects(createMockLightroom({ ims, rejectedTokenStatus: 402 as 401 }), TypeError)
})

test('other paths: 404 code 1000 once authenticated; other methods 405', async (t) => {
  const { ims, lr } = await start(t)
  const token = await accessToken(ims)
  const unknown = await send(`${lr.origin}/v2/catalogs/${lr.catalogId(ims.users[0]!.sub)}/nothing?limit=5`, auth(token))
  t.equal(unknown.status, 404)
  t.same(body(t, unknown), { code: 1000, description: 'Resource not found' })
  t.equal((await send(`${lr.origin}/v2/catalogs/abc`, {})).status, 403, 'authentication comes first')
  const post = await send(`${lr.origin}/v2/account`, auth(token), 'POST')
  t.equal(post.status, 405)
  t.equal(post.headers.allow, 'GET')
  t.same(body(t, post), { code: '405', description: 'Method Not Allowed' })
})

test('faults: 429 with an empty body, 5xx with Retry-After, custom bodies, per endpoint then *', async (t) => {
  const { ims, lr } = await start(t)
  const token = await accessToken(ims)
  lr.fail('account', { status: 429, retryAfter: 3 })
  const limited = await send(`${lr.origin}/v2/account`, auth(token))
  t.equal(limited.status, 429)
  t.equal(limited.text, '', 'empty body')
  t.equal(limited.headers['retry-after'], '3')
  t.equal(limited.headers['content-type'], undefined)

  lr.fail('account', { status: 503 }, 2)
  for (let n = 0; n < 2; n++) {
    const down = await send(`${lr.origin}/v2/account`, auth(token))
    t.equal(down.status, 503)
    t.same(body(t, down), { code: '503', description: 'Service Unavailable' })
    t.equal(down.headers['retry-after'], undefined)
  }
  t.equal((await send(`${lr.origin}/v2/account`, auth(token))).status, 200, 'faults run out')

  lr.fail('*', { status: 502, body: '<html>Bad Gateway</html>' })
  lr.fail('health', { status: 500, body: `${PREFIX}{"code":"9"}` })
  const health = await send(`${lr.origin}/v2/health`, {})
  t.equal(health.status, 500, "the endpoint's own queue goes first, before any auth check")
  t.match(health.headers['content-type'], /^application\/json/)
  const gateway = await send(`${lr.origin}/v2/catalog`, auth(token))
  t.equal(gateway.status, 502)
  t.match(gateway.headers['content-type'], /^text\/html/)
  t.equal(gateway.text, '<html>Bad Gateway</html>')
  t.equal((await send(`${lr.origin}/v2/catalog`, auth(token))).status, 200)
  t.equal((await send(`${lr.origin}/v2/nothing`, auth(token))).status, 404, 'faults apply to known endpoints only')

  lr.fail('catalog', { status: 599 })
  t.same(body(t, await send(`${lr.origin}/v2/catalog`, auth(token))), { code: '599', description: 'Error' }, 'a status without a name')

  lr.fail('*', { status: 500 }, 5)
  lr.clearFaults()
  t.equal((await send(`${lr.origin}/v2/account`, auth(token))).status, 200, 'cleared')
  t.throws(() => lr.fail('account', { status: 600 }), TypeError)
  t.throws(() => lr.fail('account', { delayMs: -1 }), TypeError)
  t.throws(() => lr.fail('account', { status: 500 }, 0), TypeError)
})

test('faults: delays answer late, resets hang up', async (t) => {
  const { ims, lr } = await start(t)
  const token = await accessToken(ims)
  lr.fail('account', { delayMs: 60 })
  const started = Date.now()
  t.equal((await send(`${lr.origin}/v2/account`, auth(token))).status, 200)
  t.ok(Date.now() - started >= 50, 'answered after the delay')
  lr.fail('account', { reset: true })
  await t.rejects(send(`${lr.origin}/v2/account`, auth(token)), { code: 'UND_ERR_SOCKET' })
  t.equal(lr.count('account:reset'), 1)
  t.equal((await send(`${lr.origin}/v2/account`, auth(token))).status, 200, 'the server carries on')
})

test('counters and the request log', async (t) => {
  const { ims, lr } = await start(t)
  const token = await accessToken(ims)
  await send(`${lr.origin}/v2/health`, { 'x-api-key': 'test-client' })
  await send(`${lr.origin}/v2/account`, auth(token))
  await send(`${lr.origin}/v2/account`, auth('bogus'))
  await send(`${lr.origin}/v2/elsewhere?x=1`, { accept: 'text/html' })
  t.equal(lr.count('*'), 4)
  t.equal(lr.count('health'), 1)
  t.equal(lr.count('account'), 2)
  t.equal(lr.count('account:200'), 1)
  t.equal(lr.count('account:403'), 1, 'an unknown token: 403 4300')
  t.equal(lr.count('unknown:403'), 1)
  t.equal(lr.count('catalog'), 0)
  t.same(lr.requests(), [
    { endpoint: 'health', method: 'GET', path: '/v2/health', apiKey: 'test-client', accept: undefined, accessToken: undefined },
    { endpoint: 'account', method: 'GET', path: '/v2/account', apiKey: 'test-client', accept: undefined, accessToken: token },
    { endpoint: 'account', method: 'GET', path: '/v2/account', apiKey: 'test-client', accept: undefined, accessToken: 'bogus' },
    { endpoint: 'unknown', method: 'GET', path: '/v2/elsewhere?x=1', apiKey: undefined, accept: 'text/html', accessToken: undefined }
  ])
  lr.resetCounts()
  t.equal(lr.count('*'), 0)
})

test('apiKeys replaces the accepted keys', async (t) => {
  const { lr } = await start(t, undefined, { apiKeys: ['partner-key'] })
  t.same(lr.apiKeys, ['partner-key'])
  t.equal((await send(`${lr.origin}/v2/health`, { 'x-api-key': 'partner-key' })).status, 200)
  t.equal((await send(`${lr.origin}/v2/health`, { 'x-api-key': 'test-client' })).status, 403)
})

test('close() ends pending delays and open connections, and can be called twice', async (t) => {
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  const lr = await createMockLightroom({ ims })
  lr.fail('health', { delayMs: 60_000 })
  const pending = send(`${lr.origin}/v2/health`, { 'x-api-key': 'test-client' })
  await new Promise((resolve) => setTimeout(resolve, 20))
  const started = Date.now()
  await Promise.all([lr.close(), lr.close()])
  await t.rejects(pending)
  t.ok(Date.now() - started < 1000, 'closed at once')
})

test('an internal error hangs up instead of leaving the client waiting', async (t) => {
  const broken = { clients: [{ clientId: 'k', clientSecret: 's' }], users: [], introspect () { throw new Error('boom') } } as unknown as MockIms
  const lr = await createMockLightroom({ ims: broken })
  t.teardown(() => lr.close())
  await t.rejects(send(`${lr.origin}/v2/account`, auth('t', 'k')), { code: 'UND_ERR_SOCKET' })
  t.equal((await send(`${lr.origin}/v2/health`, { 'x-api-key': 'k' })).status, 200, 'and keeps serving')
})

test('createMockLightroom checks its options and can listen on IPv6', async (t) => {
  await t.rejects(createMockLightroom({} as MockLightroomOptions), TypeError)
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  const lr = await createMockLightroom({ ims, host: '::1' }).catch(() => undefined)
  if (lr === undefined) {
    t.comment('no IPv6 loopback here')
    return
  }
  t.teardown(() => lr.close())
  t.match(lr.origin, /^http:\/\/\[::1\]:\d+$/)
  t.equal((await send(`${lr.origin}/v2/health`, { 'x-api-key': 'test-client' })).status, 200)
})

// Attacks 6-8 of issue 10 on the sign-in itself: replayed flows that cost a code exchange each and
// crowd out refreshes, codes reaching the logs by a near-miss URL, and plaintext providers.
import { test } from 'tap'
import Fastify from 'fastify'
import lrImsPlugin from '../index.js'
import { resolveOptions } from '../lib/options.js'
import { fakeClock } from './helpers/clock.js'
import { CALLBACK, signInUser, startLogin } from './helpers/flows.js'
import { APP_ORIGIN, COOKIE_SECRET, harness } from './helpers/setup.js'

const json = { accept: 'application/json' }
const base = { clientId: 'c', clientSecret: 's', redirectUri: `${APP_ORIGIN}/auth/lightroom/callback` }

test('attack 6: a flow-cookie pair is good for one code exchange, however often and however fast it is replayed', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const login = await startLogin(h.app)
  const callbackUrl = (code: string): string => `${CALLBACK}?code=${code}&state=${encodeURIComponent(login.state)}`
  const first = await h.app.inject({ url: callbackUrl('junk-1'), headers: { ...json, cookie: login.cookieHeader } })
  t.equal(first.json().code, 'LR_IMS_ERROR', 'the first junk code costs one exchange')
  const replays = await Promise.all(Array.from({ length: 20 }, async (_, i) => await h.app.inject({ url: callbackUrl(`junk-${i + 2}`), headers: { ...json, cookie: login.cookieHeader } })))
  for (const replay of replays) t.equal(replay.json().code, 'LR_BAD_STATE')
  t.equal(h.ims.count('token:authorization_code'), 1, 'twenty replays: not one more token call')

  // Concurrent first uses of one fresh pair: exactly one wins.
  const fresh = await startLogin(h.app)
  const racing = await Promise.all([1, 2, 3].map(async (i) => await h.app.inject({ url: `${CALLBACK}?code=race-${i}&state=${encodeURIComponent(fresh.state)}`, headers: { ...json, cookie: fresh.cookieHeader } })))
  t.equal(racing.filter((r) => r.json().code === 'LR_IMS_ERROR').length, 1, 'one reached IMS')
  t.equal(h.ims.count('token:authorization_code'), 2)
})

test('attack 6: a flow expires server side after 10 minutes, whatever the browser keeps', async (t) => {
  const clock = fakeClock()
  const h = await harness({ ims: { now: clock.now }, plugin: { now: clock.now } })
  t.teardown(h.close)
  const login = await startLogin(h.app)
  clock.advance(11 * 60_000)
  const response = await h.app.inject({ url: `${CALLBACK}?code=x&state=${encodeURIComponent(login.state)}`, headers: { ...json, cookie: login.cookieHeader } })
  t.equal(response.json().code, 'LR_BAD_STATE')
  t.equal(h.ims.count('token'), 0)
})

test('attack 6: junk sign-ins held by a slow IMS never starve a signed-in user\'s refresh', async (t) => {
  const clock = fakeClock()
  const h = await harness({ ims: { now: clock.now }, plugin: { now: clock.now } })
  t.teardown(h.close)
  const { cookie } = await signInUser(h, h.ims.users[0]!.sub)
  // More held code exchanges than the shared pool has connections (128).
  const junk = 140
  h.ims.fail('token:authorization_code', { delayMs: 4000 }, junk)
  const logins = await Promise.all(Array.from({ length: junk }, async () => await startLogin(h.app)))
  let finished = 0
  const callbacks = logins.map(async (login) => {
    const response = await h.app.inject({ url: `${CALLBACK}?code=junk&state=${encodeURIComponent(login.state)}`, headers: { ...json, cookie: login.cookieHeader } })
    finished++
    return response
  })
  while (h.ims.count('token:authorization_code') < 16) await new Promise((resolve) => setTimeout(resolve, 10))
  clock.advance(25 * 3_600_000)
  const refreshed = await h.app.inject({ url: '/token', headers: { cookie } })
  t.equal(refreshed.statusCode, 200, 'the refresh went through')
  t.equal(h.ims.count('token:refresh_token'), 1)
  t.equal(finished, 0, 'while every junk sign-in was still held by IMS')
  h.ims.clearFaults()
  for (const response of await Promise.all(callbacks)) t.ok(response.statusCode < 500, 'each junk sign-in then fails cleanly')
})

test('attack 7: a code at a wrong method, a trailing slash or a near-miss path under routePrefix never reaches the logs', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const code = 'CODE-that-must-not-be-logged-0123456789'
  const cases: Array<{ method: 'GET' | 'POST' | 'PUT', url: string }> = [
    { method: 'POST', url: `${CALLBACK}?code=${code}&state=s` },
    { method: 'PUT', url: `${CALLBACK}?code=${code}` },
    { method: 'GET', url: `${CALLBACK}/?code=${code}&state=s` },
    { method: 'GET', url: `/auth/lightroom/callbak?code=${code}` },
    { method: 'GET', url: `/auth/lightroom?code=${code}` },
    { method: 'GET', url: `/auth/lightroom/?code=${code}` },
    { method: 'GET', url: `${CALLBACK}?code=${code}&state=s` }
  ]
  for (const { method, url } of cases) {
    const response = await h.app.inject({ method, url, headers: json })
    t.ok(response.statusCode >= 400 && response.statusCode < 500, `${method} ${url.split('?')[0]}: ${response.statusCode}`)
    t.equal(response.headers['referrer-policy'], 'no-referrer', 'no Referer leaves this page')
    t.notOk(response.body.includes(code), 'the answer does not echo the code')
  }
  t.ok(h.logs.some((line) => line.includes('/auth/lightroom/callbak?[redacted]')), 'the requests are logged, query redacted')
  t.same(h.logs.filter((line) => line.includes(code)), [], 'the code is in no log line')
  // The host app's own routes keep their ordinary logging.
  await h.app.inject({ url: '/?visible=yes' })
  t.ok(h.logs.some((line) => line.includes('/?visible=yes')), 'the host app\'s URLs are logged as they are')
})

test('attack 7: a failed callback\'s HTML page sends Referrer-Policy: no-referrer', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const response = await h.app.inject({ url: `${CALLBACK}?error=access_denied`, headers: { accept: 'text/html' } })
  t.equal(response.statusCode, 401)
  t.equal(response.headers['referrer-policy'], 'no-referrer')
  t.match(response.headers['content-type'], /text\/html/)
})

test('attack 8: discoveryUrl and issuer refuse plain http except to this machine', async (t) => {
  for (const option of ['discoveryUrl', 'issuer'] as const) {
    for (const url of ['http://ims.example/ims/.well-known/openid-configuration', 'http://10.0.0.1/x', 'http://127.0.0.1.evil.example/x']) {
      t.throws(() => resolveOptions({ ...base, [option]: url }), { code: 'LR_INVALID_OPTION', option }, `${option} ${url}`)
    }
    for (const url of ['http://127.0.0.1:8080/x', 'http://localhost/x', 'http://[::1]:9/x', 'https://ims.example/x']) {
      t.doesNotThrow(() => resolveOptions({ ...base, [option]: url }), `${option} ${url} accepted`)
    }
  }
})

test('attack 8: a discovery document on loopback pointing at plaintext endpoints elsewhere is refused at start-up', async (t) => {
  const doc = Fastify()
  let origin = ''
  doc.get('/ims/.well-known/openid-configuration', async () => ({
    issuer: origin,
    authorization_endpoint: `${origin}/ims/authorize/v2`,
    token_endpoint: 'http://ims.example/ims/token/v3',
    jwks_uri: `${origin}/ims/keys`
  }))
  origin = await doc.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => doc.close())
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => await app.register(lrImsPlugin, { ...base, cookieSecret: COOKIE_SECRET, discoveryUrl: `${origin}/ims/.well-known/openid-configuration` }).ready(), { code: 'LR_INVALID_OPTION', option: 'discoveryUrl', message: /token_endpoint.*not https/ })
})

test('signOutAtIms with a provider that has no end_session_endpoint (and is not IMS) fails at start-up', async (t) => {
  const doc = Fastify()
  let origin = ''
  doc.get('/realm/.well-known/openid-configuration', async () => ({
    issuer: `${origin}/realm`,
    authorization_endpoint: `${origin}/realm/auth`,
    token_endpoint: `${origin}/realm/token`,
    jwks_uri: `${origin}/realm/keys`
  }))
  origin = await doc.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => doc.close())
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => await app.register(lrImsPlugin, { ...base, cookieSecret: COOKIE_SECRET, signOutAtIms: true, discoveryUrl: `${origin}/realm/.well-known/openid-configuration` }).ready(), { code: 'LR_INVALID_OPTION', option: 'signOutAtIms' })
})

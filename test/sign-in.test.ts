import { test } from 'tap'
import fastifyCookie from '@fastify/cookie'
import { createHash } from 'node:crypto'
import { encryptedStore } from '../index.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import { APP_ORIGIN, KEY_A, KEY_B, harness, rawRecords, signIn, signInRecords } from './helpers/setup.js'

const atCallback = (location: URL): boolean => location.pathname === '/auth/lightroom/callback'

test('the login route sends the browser to the discovered authorize endpoint with state, PKCE S256 and the scopes', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const page = await h.browser().get('/auth/lightroom/login')
  t.equal(page.status, 302)
  const location = new URL(page.location!)
  t.equal(`${location.origin}${location.pathname}`, `${h.ims.origin}/ims/authorize/v2`)
  const q = location.searchParams
  t.equal(q.get('response_type'), 'code')
  t.equal(q.get('client_id'), 'test-client')
  t.equal(q.get('redirect_uri'), `${APP_ORIGIN}/auth/lightroom/callback`)
  t.same(q.get('scope')!.split(' '), ['openid', 'AdobeID', 'lr_partner_apis', 'lr_partner_rendition_apis', 'offline_access'])
  t.equal(q.get('code_challenge_method'), 'S256')
  t.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
  t.ok(q.get('state')!.length >= 43, 'state carries at least 256 bits')
  const setCookie = ([] as string[]).concat(page.headers['set-cookie'] as string[])
  const verifierCookie = setCookie.find((c) => c.startsWith('__Host-lr_oauth_verifier='))!
  t.ok(verifierCookie, 'verifier cookie set with the __Host- prefix')
  t.match(verifierCookie, /HttpOnly/)
  t.match(verifierCookie, /Secure/)
  t.match(verifierCookie, /SameSite=Lax/)
  t.match(verifierCookie, /Path=\//)
  t.match(verifierCookie, /Max-Age=600/, 'flow cookies expire by themselves')
  const verifier = verifierCookie.split(';')[0]!.split('=')[1]!
  t.equal(createHash('sha256').update(verifier).digest('base64url'), q.get('code_challenge'), 'the challenge is S256 of the verifier in the cookie')
  t.equal(page.headers['cache-control'], 'no-store')
})

test('a successful sign-in stores encrypted tokens under the IMS user id, sets a hardened session cookie and redirects 303 to returnTo', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const browser = h.browser()
  const done = await signIn(browser, '/photos?sort=date')
  t.equal(done.status, 303)
  t.equal(done.location, '/photos?sort=date')
  const sessionCookie = ([] as string[]).concat(done.headers['set-cookie'] as string[]).find((c) => c.startsWith('__Host-lr_session='))!
  t.ok(sessionCookie, 'session cookie uses the __Host- prefix for an https app')
  t.match(sessionCookie, /HttpOnly/)
  t.match(sessionCookie, /Secure/)
  t.match(sessionCookie, /SameSite=Lax/)
  t.match(sessionCookie, /Path=\//)
  t.notMatch(sessionCookie, /Domain=/)
  t.notOk(browser.cookies.has('__Host-lr_oauth_state'), 'flow cookies are cleared after use')
  t.notOk(browser.cookies.has('__Host-lr_oauth_verifier'))

  const sub = h.ims.users[0]!.sub
  const records = await rawRecords(h.backend)
  t.ok(records.has(tokenKey(sub)), 'tokens stored under the IMS user id')
  const secrets = h.ims.issuedSecrets()
  t.ok(secrets.length >= 3)
  for (const [, raw] of records) {
    for (const secret of secrets) t.notOk(raw.includes(secret), 'no issued token or code appears in a stored record')
    t.notOk(raw.includes(h.ims.users[0]!.email!), 'no email in plaintext')
  }
  t.notOk(browser.cookieHeader().includes(sub), 'the browser holds no user id')

  const token = await browser.get('/token', { accept: 'application/json' })
  t.equal(token.status, 200)
  t.equal(h.ims.introspect(JSON.parse(token.body).token).active, true, 'lightroomToken() returns the issued access token')
})

test('returnTo that leaves the origin is ignored', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  for (const evil of ['//evil.example', '/\\evil.example', 'https://evil.example/', 'https:evil.example', '/.//evil.example', '/\t/evil.example', 'javascript:alert(1)']) {
    const done = await signIn(h.browser(), evil)
    t.equal(done.status, 303, `sign-in completes for ${JSON.stringify(evil)}`)
    t.equal(done.location, '/', `redirected home, not to ${JSON.stringify(evil)}`)
  }
})

test('IMS ?error=access_denied gives a clear 401 without a token call', async (t) => {
  const h = await harness({ ims: { consent: true } })
  t.teardown(h.close)
  const browser = h.browser()
  const consent = await browser.follow('/auth/lightroom/login')
  t.equal(consent.status, 200)
  t.match(consent.body, /Deny/)
  const state = new URL(browser.history[0]!.location!).searchParams.get('state')!
  const denied = await browser.get(`/auth/lightroom/callback?error=access_denied&error_description=${encodeURIComponent('<script>x</script>')}&state=${encodeURIComponent(state)}`)
  t.equal(denied.status, 401)
  t.match(denied.body, /LR_ACCESS_DENIED/)
  t.notMatch(denied.body, /<script>/, 'provider text is never reflected')
  t.equal(h.ims.count('token'), 0)
  const json = await h.app.inject({ url: '/auth/lightroom/callback?error=access_denied', headers: { accept: 'application/json' } })
  t.equal(json.statusCode, 401)
  t.equal(json.json().code, 'LR_ACCESS_DENIED')
  t.equal((await signInRecords(h.backend)).length, 0, 'nothing stored')
})

test('a wrong, missing or replayed state is refused with 400 and no token call', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const browser = h.browser()
  const atIms = await browser.follow('/auth/lightroom/login', { stopAt: atCallback })
  const callback = new URL(atIms.location!)
  const code = callback.searchParams.get('code')!

  const wrong = await browser.get(`/auth/lightroom/callback?code=${code}&state=forged`)
  t.equal(wrong.status, 400)
  t.match(wrong.body, /LR_BAD_STATE/)
  // The failed attempt spent the flow cookies: even the right state is now refused.
  const replay = await browser.get(callback.pathname + callback.search)
  t.equal(replay.status, 400)
  const noState = await h.app.inject({ url: `/auth/lightroom/callback?code=${code}`, headers: { accept: 'application/json' } })
  t.equal(noState.statusCode, 400)
  t.equal(noState.json().code, 'LR_BAD_STATE')
  t.equal(h.ims.count('token'), 0, 'IMS token endpoint never called')
  t.equal((await signInRecords(h.backend)).length, 0)
})

test('a missing PKCE verifier is refused before any token call', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const browser = h.browser()
  const atIms = await browser.follow('/auth/lightroom/login', { stopAt: atCallback })
  browser.cookies.delete('__Host-lr_oauth_verifier')
  const page = await browser.get(atIms.location!)
  t.equal(page.status, 400)
  t.match(page.body, /cookie is missing/)
  t.equal(h.ims.count('token'), 0)
  t.equal((await signInRecords(h.backend)).length, 0)
})

test('a replayed code is rejected by IMS and ends in a clean 400 with nothing stored', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const first = h.browser()
  const atIms = await first.follow('/auth/lightroom/login', { stopAt: atCallback })
  const usedCode = new URL(atIms.location!).searchParams.get('code')!
  t.equal((await first.get(atIms.location!)).status, 303)
  const before = await rawRecords(h.backend)

  const attacker = h.browser()
  const own = await attacker.follow('/auth/lightroom/login', { stopAt: atCallback })
  const state = new URL(own.location!).searchParams.get('state')!
  const replay = await attacker.get(`/auth/lightroom/callback?code=${usedCode}&state=${encodeURIComponent(state)}`)
  t.equal(replay.status, 400)
  t.match(replay.body, /LR_IMS_ERROR/)
  t.match(replay.body, /invalid_grant/)
  t.equal(h.ims.count('token:authorization_code'), 2)
  t.same([...(await rawRecords(h.backend)).keys()].sort(), [...before.keys()].sort(), 'no new record')
  t.notOk([...attacker.cookies.keys()].some((name) => name.includes('lr_session')), 'no session for the replayer')
})

test('an IMS failure on the token call gives a clean 502 and stores nothing', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  for (const fault of [{ status: 500 }, { reset: true as const }, { status: 503, retryAfter: 1 }]) {
    h.ims.fail('token', fault)
    const page = await signIn(h.browser())
    t.equal(page.status, 502, `502 for ${JSON.stringify(fault)}`)
    t.match(page.body, /LR_IMS_UNAVAILABLE/)
    t.notMatch(page.body, /at .*\.ts:\d+/, 'no stack trace')
  }
  t.equal((await signInRecords(h.backend)).length, 0)
})

test('a tampered or forged session cookie is treated as signed out', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  const genuine = browser.cookies.get('__Host-lr_session')!
  const [id, signature] = genuine.split('.')
  const forgeries = [
    `${id!.slice(0, -1)}${id!.endsWith('A') ? 'B' : 'A'}.${signature}`,
    `${id}.${signature!.slice(0, -2)}xx`,
    id!,
    'x'.repeat(5000),
    '%00%zz'
  ]
  for (const forged of forgeries) {
    const response = await h.app.inject({ url: '/token', headers: { cookie: `__Host-lr_session=${forged}` } })
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'LR_LOGIN_REQUIRED')
    t.notMatch(response.body, /stack|\.ts:/)
  }
  const ok = await h.app.inject({ url: '/token', headers: { cookie: `__Host-lr_session=${genuine}` } })
  t.equal(ok.statusCode, 200)
})

test('signing in again rotates the session id and ends the old session (no fixation)', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  const first = browser.cookies.get('__Host-lr_session')!
  await signIn(browser)
  const second = browser.cookies.get('__Host-lr_session')!
  t.not(first, second)
  const old = await h.app.inject({ url: '/token', headers: { cookie: `__Host-lr_session=${first}` } })
  t.equal(old.statusCode, 401, 'the previous session id no longer works')
  const current = await h.app.inject({ url: '/token', headers: { cookie: `__Host-lr_session=${second}` } })
  t.equal(current.statusCode, 200)
})

test('a token record moved to another user fails to decrypt and that user must sign in', async (t) => {
  const h = await harness({ ims: { users: [{ sub: 'alice@AdobeID' }, { sub: 'bob@AdobeID' }] } })
  t.teardown(h.close)
  const alice = h.browser()
  await signIn(alice)
  h.ims.signInAs('bob@AdobeID')
  const bob = h.browser()
  await signIn(bob)
  const aliceRecord = await h.backend.get(tokenKey('alice@AdobeID'))
  await h.backend.set(tokenKey('bob@AdobeID'), aliceRecord!)
  const response = await bob.get('/token', { accept: 'application/json' })
  t.equal(response.status, 401)
  t.equal(JSON.parse(response.body).code, 'LR_LOGIN_REQUIRED')
  t.ok(h.logs.some((line) => line.includes('unreadable')), 'a warning is logged')
  t.notOk(h.logs.some((line) => line.includes(aliceRecord!)), 'without the record')
  t.equal((await alice.get('/token', { accept: 'application/json' })).status, 200, 'alice is unaffected')
})

test('records written with an old key are still read after key rotation, and re-encrypted on the next write', async (t) => {
  const first = await harness()
  const browser = first.browser()
  await signIn(browser)
  const session = browser.cookies.get('__Host-lr_session')!
  const backend = first.backend
  await first.app.close()
  const sub = first.ims.users[0]!.sub
  t.match(await backend.get(tokenKey(sub)), /^v1\.a\./)

  const rotated = await harness({ sharedIms: first.ims, backend, plugin: { store: encryptedStore(backend, { keys: [KEY_B, KEY_A] }) } })
  t.teardown(async () => { await rotated.close(); await first.ims.close() })
  const response = await rotated.app.inject({ url: '/token', headers: { cookie: `__Host-lr_session=${session}` } })
  t.equal(response.statusCode, 200, 'old-key records still decrypt')
  await rotated.app.lightroom.tokenFor(sub, { force: true })
  t.match(await backend.get(tokenKey(sub)), /^v1\.b\./, 'the refreshed record is written with the new key')
})

test('a generic OpenID provider (not IMS paths) signs in the same way', async (t) => {
  const h = await harness({ ims: { flavor: 'generic' } })
  t.teardown(h.close)
  t.match(h.ims.discoveryUrl, /\/realms\/test\/\.well-known\/openid-configuration$/)
  const browser = h.browser()
  const login = await browser.get('/auth/lightroom/login')
  t.match(login.location, /\/realms\/test\/protocol\/openid-connect\/auth\?/)
  await browser.follow(login.location!, { stopAt: (l) => l.origin === APP_ORIGIN && !l.pathname.startsWith('/auth/') })
  const token = await browser.get('/token', { accept: 'application/json' })
  t.equal(token.status, 200)
})

test('a host app that registered @fastify/cookie itself keeps its cookies, and sign-in still works', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const withCookie = await harness({
    sharedIms: h.ims,
    beforePlugin: async (app) => { await app.register(fastifyCookie, { secret: 'the-host-apps-own-cookie-secret-0123456789' }) },
    routes: (app) => {
      app.get('/mine', async (request) => ({ mine: request.cookies.mine ?? null, signed: request.unsignCookie(request.cookies.signed ?? '').value }))
      app.get('/sign', async (_request, reply) => { reply.setCookie('signed', 'hello', { signed: true }); return 'ok' })
    }
  })
  t.teardown(withCookie.close)
  const browser = withCookie.browser()
  t.equal((await signIn(browser)).status, 303)
  t.equal((await browser.get('/token', { accept: 'application/json' })).status, 200)
  await browser.get('/sign')
  const mine = JSON.parse((await browser.get('/mine')).body)
  t.equal(mine.signed, 'hello', 'the host app signs and reads its own cookies with its own secret')
  const raw = await withCookie.app.inject({ url: '/mine', headers: { cookie: 'mine=1' } })
  t.equal(raw.json().mine, '1', 'the host app still gets request.cookies parsed on its routes')
})

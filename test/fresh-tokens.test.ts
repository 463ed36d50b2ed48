import { test, type Test } from 'tap'
import type { StoreBackend } from '../index.js'
import { memoryBackend } from '../index.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import type { Browser } from './helpers/browser.js'
import { fakeClock, type FakeClock } from './helpers/clock.js'
import { harness, signIn, type Harness, type HarnessOptions } from './helpers/setup.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

async function signedIn (options: HarnessOptions & { clock?: FakeClock } = {}): Promise<Harness & { browser1: Browser, sub: string, cookie: string }> {
  const h = await harness({
    ...options,
    ims: { ...options.ims, ...(options.clock ? { now: options.clock.now } : {}) },
    plugin: { ...options.plugin, ...(options.clock ? { now: options.clock.now } : {}) }
  })
  const browser1 = h.browser()
  await signIn(browser1)
  return { ...h, browser1, sub: h.ims.users[0]!.sub, cookie: browser1.cookieHeader() }
}

async function token (h: Harness & { cookie: string }): Promise<{ status: number, token?: string, code?: string }> {
  const response = await h.app.inject({ url: '/token', headers: { cookie: h.cookie } })
  const body = response.json()
  return { status: response.statusCode, token: body.token, code: body.code }
}

async function storedRecord (h: Harness, sub: string): Promise<unknown> {
  return (await h.store.get(tokenKey(sub)))?.value
}

function assertNoSecretsLogged (t: Test, h: Harness): void {
  const all = h.logs.join('\n')
  const leaked = h.ims.issuedSecrets().filter((secret) => all.includes(secret))
  t.same(leaked, [], 'no issued token or code appears in any log line')
  t.notOk(all.includes(h.ims.clients[0]!.clientSecret), 'the client secret is never logged')
}

/** Counts round trips to the backend (a get or a getMany is one) and the keys they read. */
function countingBackend (): StoreBackend & { roundTrips: number, keysRead: number } {
  const inner = memoryBackend()
  const counted = Object.create(inner) as StoreBackend & { roundTrips: number, keysRead: number }
  counted.roundTrips = 0
  counted.keysRead = 0
  counted.get = async (key) => { counted.roundTrips++; counted.keysRead++; return await inner.get(key) }
  counted.getMany = async (keys) => { counted.roundTrips++; counted.keysRead += keys.length; return await inner.getMany!(keys) }
  return counted
}

test('a fresh token is returned without any network call, and twice in a request costs one store read', async (t) => {
  const backend = countingBackend()
  const h = await signedIn({
    backend,
    routes: (app) => app.get('/twice', async (request) => [await request.lightroomToken(), await request.lightroomToken()])
  })
  t.teardown(h.close)
  const calls = h.ims.count('token')
  backend.roundTrips = 0
  backend.keysRead = 0
  const response = await h.app.inject({ url: '/twice', headers: { cookie: h.cookie } })
  const [a, b] = response.json()
  t.equal(a, b)
  t.equal(h.ims.count('token'), calls, 'no call to IMS')
  t.equal(backend.roundTrips, 1, 'one round trip for the whole request')
  t.equal(backend.keysRead, 2, 'reading the session and the tokens together')
})

test('1,000 concurrent calls for a user whose token expired make exactly one refresh call and all get the new token', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock })
  t.teardown(h.close)
  const old = (await token(h)).token
  clock.advance(DAY)
  const results = await Promise.all(Array.from({ length: 1000 }, async () => await token(h)))
  t.equal(h.ims.count('token:refresh_token'), 1, 'exactly one refresh')
  t.ok(results.every((r) => r.status === 200), 'all 200')
  const tokens = new Set(results.map((r) => r.token))
  t.equal(tokens.size, 1, 'one token for everybody')
  t.not([...tokens][0], old)
  t.equal(h.ims.introspect([...tokens][0]!).active, true)
  assertNoSecretsLogged(t, h)
})

test('refresh tokens rotate: the old one is rejected by IMS and never used again', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock })
  t.teardown(h.close)
  const [first] = h.ims.activeRefreshTokens(h.sub)
  const refreshes: string[] = []
  h.app.lightroom.events.on('refresh', (event) => { refreshes.push(event.reason); t.notOk(JSON.stringify(event).includes('eyJ'), 'no token in event payloads') })
  for (let round = 0; round < 3; round++) {
    clock.advance(DAY)
    t.equal((await token(h)).status, 200)
  }
  t.same(refreshes, ['expiring', 'expiring', 'expiring'])
  t.equal(h.ims.count('token:refresh_token'), 3)
  t.equal(h.ims.activeRefreshTokens(h.sub).length, 1)
  t.not(h.ims.activeRefreshTokens(h.sub)[0], first, 'the first refresh token is dead')
  t.equal(h.ims.count('token:refresh_token:error'), 0, 'no refresh was ever rejected (the old token was never reused)')
})

test('an IMS outage during refresh never deletes tokens; the current token is used while valid, then 503, then recovery', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock, plugin: { httpTimeoutMs: 200 } })
  t.teardown(h.close)
  const original = (await token(h)).token
  // The delayed request is lost before IMS processes it (dropIfClientGone): a refresh IMS did process
  // but whose answer was lost is a different story, told by the next test.
  const faults = [{ status: 500 }, { status: 503, retryAfter: 1 }, { delayMs: 1000, dropIfClientGone: true }, { reset: true as const }]
  // Inside the refresh margin but not expired: the still-valid token is handed out.
  clock.advance(DAY - 60_000)
  for (const fault of faults) {
    h.ims.fail('token', fault, 4)
    const during = await token(h)
    t.equal(during.status, 200, `still-valid token served during ${JSON.stringify(fault)}`)
    t.equal(during.token, original)
    h.ims.clearFaults()
  }
  // Expired: 503, nothing deleted. (Each failed refresh cools down for 5 s: step past it.)
  clock.advance(2 * 60_000)
  for (const fault of faults) {
    clock.advance(5_000)
    h.ims.fail('token', fault, 4)
    const during = await token(h)
    t.equal(during.status, 503, `503 during ${JSON.stringify(fault)}`)
    t.equal(during.code, 'LR_IMS_UNAVAILABLE')
    t.ok(await h.backend.get(tokenKey(h.sub)), 'tokens kept')
    h.ims.clearFaults()
  }
  clock.advance(5_000)
  const after = await token(h)
  t.equal(after.status, 200, 'recovers once IMS is back')
  t.not(after.token, original)
  assertNoSecretsLogged(t, h)
})

test('a refresh IMS processed but whose answer was lost: nothing is deleted during the outage, then the rotated-away grant asks for a new sign-in', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock, plugin: { httpTimeoutMs: 150 }, ims: {} })
  t.teardown(h.close)
  clock.advance(DAY)
  h.ims.fail('token', { delayMs: 400 }, 4)
  const during = await token(h)
  t.equal(during.status, 503, 'IMS timed out: 503')
  t.ok(await h.backend.get(tokenKey(h.sub)), 'nothing deleted, even though a late retry may have met invalid_grant')
  // Let the slow requests reach IMS: the first rotates the refresh token we never heard back about.
  await new Promise((resolve) => setTimeout(resolve, 500))
  clock.advance(5_000)
  const after = await token(h)
  t.equal(after.status, 401, 'the grant we hold was rotated away at IMS: sign in again')
  t.equal(after.code, 'LR_LOGIN_REQUIRED')
})

test('invalid_grant after the user revoked consent deletes the tokens and answers 401 LR_LOGIN_REQUIRED', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock })
  t.teardown(h.close)
  const logouts: unknown[] = []
  h.app.lightroom.events.on('logout', (event) => logouts.push(event))
  h.ims.revokeConsent(h.sub)
  clock.advance(DAY)
  const result = await token(h)
  t.equal(result.status, 401)
  t.equal(result.code, 'LR_LOGIN_REQUIRED')
  t.equal(await storedRecord(h, h.sub), undefined, 'the token record is gone')
  t.same(logouts, [{ userId: h.sub, reason: 'invalid_grant' }])
  assertNoSecretsLogged(t, h)
})

test('expires_in in milliseconds (legacy v1) and refresh responses without refresh_token are handled', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock, ims: { expiresInUnit: 'milliseconds', omitRefreshTokenOnRefresh: true } })
  t.teardown(h.close)
  clock.advance(DAY - 10 * 60_000)
  t.equal((await token(h)).status, 200)
  t.equal(h.ims.count('token:refresh_token'), 0, '24 h read correctly: no refresh while 10 minutes remain')
  clock.advance(6 * 60_000)
  t.equal((await token(h)).status, 200)
  t.equal(h.ims.count('token:refresh_token'), 1)
  clock.advance(DAY)
  t.equal((await token(h)).status, 200, 'the kept refresh token works again')
  t.equal(h.ims.count('token:refresh_token'), 2)
})

test('renewal keeps an active user signed in across 20 days; an idle user past 14 days must sign in again', async (t) => {
  const clock = fakeClock()
  // Access tokens that outlive a week make the renewal the only thing refreshing the refresh token.
  const h = await signedIn({ clock, ims: { accessTokenLifetimeSeconds: 10 * 86400, users: [{ sub: 'active@AdobeID' }, { sub: 'idle@AdobeID' }] } })
  t.teardown(h.close)
  h.ims.signInAs('idle@AdobeID')
  const idle = h.browser()
  await signIn(idle)
  const renewals: string[] = []
  h.app.lightroom.events.on('refresh', (event) => renewals.push(`${event.userId}:${event.reason}`))
  for (let day = 1; day <= 20; day++) {
    clock.advance(DAY)
    const result = await token(h)
    t.equal(result.status, 200, `active user fine on day ${day}`)
  }
  t.ok(renewals.filter((r) => r === 'active@AdobeID:renewal').length >= 2, 'renewed at least twice in 20 days')
  const idleResult = await h.app.inject({ url: '/token', headers: { cookie: idle.cookieHeader() } })
  t.equal(idleResult.statusCode, 401)
  t.equal(idleResult.json().code, 'LR_LOGIN_REQUIRED')
})

test('renewExpiring renews every grant older than the threshold and reports counts', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock, ims: { users: [{ sub: 'u1@AdobeID' }, { sub: 'u2@AdobeID' }, { sub: 'u3@AdobeID' }] } })
  t.teardown(h.close)
  for (const sub of ['u2@AdobeID', 'u3@AdobeID']) { h.ims.signInAs(sub); await signIn(h.browser()) }
  clock.advance(8 * DAY)
  h.ims.revokeConsent('u3@AdobeID')
  const report = await h.app.lightroom.renewExpiring({ olderThanSeconds: 7 * 86400 })
  t.same(report, { scanned: 3, renewed: 2, busy: 0, failed: 0, loggedOut: 1, completed: true, aborted: false })
  t.equal(h.ims.count('token:refresh_token'), 3)
  const again = await h.app.lightroom.renewExpiring()
  t.same(again, { scanned: 2, renewed: 0, busy: 0, failed: 0, loggedOut: 0, completed: true, aborted: false }, 'fresh grants are left alone (the signed-out user is not a grant)')
})

test('tokenFor serves background jobs with the same guarantees', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock })
  t.teardown(h.close)
  const first = await h.app.lightroom.tokenFor(h.sub)
  t.equal(h.ims.introspect(first).active, true)
  clock.advance(DAY)
  const [a, b] = await Promise.all([h.app.lightroom.tokenFor(h.sub), h.app.lightroom.tokenFor(h.sub)])
  t.equal(a, b)
  t.not(a, first)
  t.equal(h.ims.count('token:refresh_token'), 1)
  await t.rejects(h.app.lightroom.tokenFor('nobody@AdobeID'), { code: 'LR_LOGIN_REQUIRED', statusCode: 401 })
})

test('requireLogin sends browsers to sign in and gives API callers a 401 with loginUrl', async (t) => {
  const h = await signedIn({
    routes: (app) => app.get('/photos', { preHandler: app.lightroom.requireLogin }, async (request) => ({ user: await request.lightroomUserId() }))
  })
  t.teardown(h.close)
  const browser = await h.app.inject({ url: '/photos?page=2', headers: { accept: 'text/html,application/xhtml+xml' } })
  t.equal(browser.statusCode, 302)
  t.equal(browser.headers.location, '/auth/lightroom/login?returnTo=%2Fphotos%3Fpage%3D2')
  const api = await h.app.inject({ url: '/photos', headers: { accept: 'application/json' } })
  t.equal(api.statusCode, 401)
  t.same(api.json(), { statusCode: 401, code: 'LR_LOGIN_REQUIRED', error: 'Unauthorized', message: 'Sign in with Adobe to continue', loginUrl: '/auth/lightroom/login?returnTo=%2Fphotos' })
  const ok = await h.app.inject({ url: '/photos', headers: { cookie: h.cookie } })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { user: h.sub })
})

test('logout revokes at IMS, deletes tokens and session, clears the cookie and redirects home', async (t) => {
  const h = await signedIn()
  t.teardown(h.close)
  const response = await h.app.inject({ method: 'POST', url: '/auth/lightroom/logout', headers: { cookie: h.cookie, origin: 'https://app.test' } })
  t.equal(response.statusCode, 303)
  t.equal(response.headers.location, '/')
  t.match(response.headers['set-cookie'], /__Host-lr_session=;.*Expires=Thu, 01 Jan 1970/)
  t.equal(h.ims.count('revoke'), 1)
  t.same(h.ims.activeRefreshTokens(h.sub), [], 'the grant is revoked at IMS')
  t.equal(await storedRecord(h, h.sub), undefined, 'tokens gone')
  t.equal((await token(h)).status, 401, 'the old cookie no longer works')
})

test('logout is CSRF-safe: cross-site POSTs are refused and GET is not a logout', async (t) => {
  const h = await signedIn()
  t.teardown(h.close)
  const foreign = await h.app.inject({ method: 'POST', url: '/auth/lightroom/logout', headers: { cookie: h.cookie, origin: 'https://evil.example', accept: 'application/json' } })
  t.equal(foreign.statusCode, 403)
  t.equal(foreign.json().code, 'LR_BAD_ORIGIN')
  const fetchSite = await h.app.inject({ method: 'POST', url: '/auth/lightroom/logout', headers: { cookie: h.cookie, 'sec-fetch-site': 'cross-site' } })
  t.equal(fetchSite.statusCode, 403)
  const viaGet = await h.app.inject({ method: 'GET', url: '/auth/lightroom/logout', headers: { cookie: h.cookie } })
  t.equal(viaGet.statusCode, 404)
  t.equal(h.ims.count('revoke'), 0)
  t.equal((await token(h)).status, 200, 'still signed in')
})

test('a failed revocation is logged, and the user is still signed out locally', async (t) => {
  const h = await signedIn()
  t.teardown(h.close)
  h.ims.fail('revoke', { status: 500 }, 5)
  const response = await h.app.inject({ method: 'POST', url: '/auth/lightroom/logout', headers: { cookie: h.cookie } })
  t.equal(response.statusCode, 303)
  t.ok(h.logs.some((line) => line.includes('revoking a grant at IMS failed')))
  t.equal((await token(h)).status, 401)
  assertNoSecretsLogged(t, h)
})

test('lightroomTokenInfo shows expiry times, never tokens, and follows refreshes', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({
    clock,
    routes: (app) => app.get('/info', async (request) => await request.lightroomTokenInfo() ?? { signedOut: true })
  })
  t.teardown(h.close)
  const info = (await h.app.inject({ url: '/info', headers: { cookie: h.cookie } })).json()
  t.same(Object.keys(info).sort(), ['accessExpiresAt', 'receivedAt', 'refreshExpiresAt', 'refreshIssuedAt', 'userId'])
  t.equal(info.userId, h.sub)
  t.equal(info.accessExpiresAt, clock.now() + 86_399_000)
  t.notOk(h.ims.issuedSecrets().some((secret) => JSON.stringify(info).includes(secret)))
  clock.advance(DAY)
  await token(h)
  const after = (await h.app.inject({ url: '/info', headers: { cookie: h.cookie } })).json()
  t.equal(after.accessExpiresAt, clock.now() + 86_399_000, 'the refreshed expiry')
  t.same((await h.app.inject('/info')).json(), { signedOut: true })
})

test('short-lived tokens: the refresh margin never exceeds half the lifetime, so there is no refresh on every request', async (t) => {
  const clock = fakeClock()
  // 60-second tokens against the default 5-minute margin.
  const h = await signedIn({ clock, ims: { accessTokenLifetimeSeconds: 60 } })
  t.teardown(h.close)
  for (let i = 0; i < 5; i++) t.equal((await token(h)).status, 200)
  t.equal(h.ims.count('token:refresh_token'), 0, 'a fresh 60 s token is used, not refreshed each time')
  clock.advance(31_000)
  t.equal((await token(h)).status, 200)
  t.equal(h.ims.count('token:refresh_token'), 1, 'refreshed once less than half its life remained')
  t.equal((await token(h)).status, 200)
  t.equal(h.ims.count('token:refresh_token'), 1)
})

test('signing out ends every session of the user, on every device, even after a later sign-in', async (t) => {
  const h = await signedIn({ routes: (app) => app.get('/who', async (request) => ({ user: await request.lightroomUserId() ?? null })) })
  t.teardown(h.close)
  const shared = h.browser()
  await signIn(shared)
  const sharedCookie = shared.cookieHeader()
  await h.app.inject({ method: 'POST', url: '/auth/lightroom/logout', headers: { cookie: h.cookie } })
  const phone = h.browser()
  await signIn(phone)
  const revived = await h.app.inject({ url: '/token', headers: { cookie: sharedCookie } })
  t.equal(revived.statusCode, 401, 'the session on the shared computer stays signed out')
  t.equal((await h.app.inject({ url: '/token', headers: { cookie: phone.cookieHeader() } })).statusCode, 200, 'the new sign-in works')
  t.same((await h.app.inject({ url: '/who', headers: { cookie: sharedCookie } })).json(), { user: null }, 'lightroomUserId agrees')
  await h.app.lightroom.signOut(h.sub)
  t.equal((await h.app.inject({ url: '/token', headers: { cookie: phone.cookieHeader() } })).statusCode, 401, 'app.lightroom.signOut ends it too')
})

test('when IMS keeps the refresh token, renewal is asked for once per period, not on every request', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock, ims: { omitRefreshTokenOnRefresh: true, accessTokenLifetimeSeconds: 30 * 86400, refreshTokenLifetimeSeconds: 60 * 86400 } })
  t.teardown(h.close)
  clock.advance(7 * DAY + 1000)
  for (let i = 0; i < 10; i++) t.equal((await token(h)).status, 200)
  t.equal(h.ims.count('token:refresh_token'), 1, 'one renewal attempt, declined (same refresh token)')
  clock.advance(7 * DAY)
  t.equal((await token(h)).status, 200)
  t.equal(h.ims.count('token:refresh_token'), 2, 'asked again a renewal period later')
})

test('logout goes back to a same-origin returnTo, never elsewhere', async (t) => {
  const h = await signedIn()
  t.teardown(h.close)
  const bye = await h.app.inject({ method: 'POST', url: '/auth/lightroom/logout?returnTo=%2Fgoodbye', headers: { cookie: h.cookie } })
  t.equal(bye.statusCode, 303)
  t.equal(bye.headers.location, '/goodbye')
  const evil = await h.app.inject({ method: 'POST', url: '/auth/lightroom/logout?returnTo=%2F%2Fevil.example' })
  t.equal(evil.headers.location, '/')
})

test('during an IMS outage, a failed refresh is not retried for 5 s: expired tokens get an immediate 503, valid ones are served', async (t) => {
  const clock = fakeClock()
  const h = await signedIn({ clock, ims: { users: [{ sub: 'a@AdobeID' }, { sub: 'b@AdobeID' }] } })
  t.teardown(h.close)
  clock.advance(DAY + 1000)
  h.ims.fail('token', { status: 503 }, 100)
  t.equal((await token(h)).status, 503)
  const calls = h.ims.count('token')
  for (let i = 0; i < 20; i++) t.equal((await token(h)).code, 'LR_IMS_UNAVAILABLE')
  t.equal(h.ims.count('token'), calls, 'no call to IMS while cooling down: no request waits out the retries')
  h.ims.clearFaults()
  clock.advance(4_000)
  t.equal((await token(h)).status, 503, 'still cooling down')
  clock.advance(1_001)
  t.equal((await token(h)).status, 200, 'then IMS is asked again, and recovery is immediate')
  t.equal(h.ims.count('token:refresh_token:error'), 0)
})

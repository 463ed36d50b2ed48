// Secrets never leave: a whole lifecycle (sign-in, refresh, IMS faults, invalid_grant, sign-out,
// a corrupt record), then every log line and every answer the app gave is scanned for every
// token, code, verifier, session id, client secret, cookie secret and encryption key; and every
// failure path of sign-in answers without a stack trace or an internal error text.
import { test } from 'tap'
import type { InjectOptions } from 'fastify'
import { generateKeyPair, SignJWT } from 'jose'
import { memoryBackend, type StoreBackend } from '../index.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import type { Browser } from './helpers/browser.js'
import { fakeClock } from './helpers/clock.js'
import { CALLBACK, LOGOUT, STACK_TRACE, authorizeAs, cookieNames, leakedSecrets, setCookies, signInUser, startLogin } from './helpers/flows.js'
import { APP_ORIGIN, COOKIE_SECRET, KEY_A, KEY_B, harness, rawRecords } from './helpers/setup.js'

const DAY = 86_400_000
const ALICE = 'A11CE00000000000000000AA@AdobeID'
const BOB = 'B0B0000000000000000000BB@AdobeID'
const NAMES = cookieNames(true)
/** What a store driver's error might say; it must never reach a client. */
const STORE_ERROR = 'connect ECONNREFUSED 10.1.2.3:6379'

/** A memory backend whose writes can be made to fail, as a Redis that went away. */
function switchableBackend (): { backend: StoreBackend, down: (value: boolean) => void } {
  const inner = memoryBackend()
  let isDown = false
  const backend = Object.create(inner) as StoreBackend
  backend.set = async (key, value, ttl) => { if (isDown) throw new Error(STORE_ERROR); await inner.set(key, value, ttl) }
  backend.compareAndSet = async (key, expected, value, ttl) => { if (isDown) throw new Error(STORE_ERROR); return await inner.compareAndSet(key, expected, value, ttl) }
  return { backend, down: (value) => { isDown = value } }
}

function keyEncodings (key: Buffer): string[] {
  return [key.toString('base64'), key.toString('base64url'), key.toString('hex')]
}

test('secrets never leave: a whole lifecycle, then every log line, every answer and every stored record scanned', async (t) => {
  const clock = fakeClock()
  const h = await harness({
    ims: { now: clock.now, users: [{ sub: ALICE }, { sub: BOB }] },
    plugin: { now: clock.now },
    routes: (app) => app.get('/whoami', async (request) => ({ user: (await request.lightroomUserId()) ?? null }))
  })
  t.teardown(h.close)
  const browsers: Browser[] = []
  const answers: string[] = []
  const send = async (options: InjectOptions): Promise<Awaited<ReturnType<typeof h.app.inject>>> => {
    const response = await h.app.inject(options)
    // The test route's 200 answer is the one place a token belongs; its headers are still scanned.
    const tokenAnswer = String(options.url).startsWith('/token') && response.statusCode === 200
    answers.push(`${JSON.stringify(response.headers)}\n${tokenAnswer ? '' : response.body}`)
    return response
  }
  const signIn = async (sub: string): Promise<string> => {
    const { browser, cookie } = await signInUser(h, sub)
    browsers.push(browser)
    return cookie
  }
  const token = async (cookie: string): Promise<{ status: number, code?: string }> => {
    const response = await send({ url: '/token', headers: { cookie } })
    return { status: response.statusCode, code: response.json().code }
  }

  // Sign-in, and a refresh a day later.
  const alice = await signIn(ALICE)
  const bob = await signIn(BOB)
  clock.advance(DAY)
  t.equal((await token(alice)).status, 200, 'refreshed after a day')
  t.equal(h.ims.count('token:refresh_token'), 1)

  // IMS faults: the valid token is served while it lasts, then 503, then recovery.
  clock.advance(DAY - 60_000)
  h.ims.fail('token', { status: 500 }, 4)
  t.equal((await token(alice)).status, 200, 'IMS 500s: still-valid token served')
  // Each failed refresh cools down for 5 s (no IMS call meanwhile): step past it for each fault.
  clock.advance(120_000)
  h.ims.fail('token', { reset: true }, 4)
  t.equal((await token(alice)).code, 'LR_IMS_UNAVAILABLE', 'IMS resets: 503 once expired')
  clock.advance(5_000)
  h.ims.fail('token', { status: 503, retryAfter: 1, body: '{"error":"temporarily_unavailable","error_description":"try later"}' }, 4)
  t.equal((await token(alice)).code, 'LR_IMS_UNAVAILABLE', 'IMS 503: 503 once expired')
  h.ims.clearFaults()
  clock.advance(5_000)
  t.equal((await token(alice)).status, 200, 'recovered')

  // invalid_grant: Bob disconnected the app at Adobe.
  const logouts: Array<{ userId: string, reason: string }> = []
  h.app.lightroom.events.on('logout', (event) => logouts.push(event))
  h.ims.revokeConsent(BOB)
  t.equal((await token(bob)).code, 'LR_LOGIN_REQUIRED', 'invalid_grant signs Bob out')
  t.same(logouts, [{ userId: BOB, reason: 'invalid_grant' }])

  // Explicit sign-out, once with IMS refusing the revocation.
  t.equal((await send({ method: 'POST', url: LOGOUT, headers: { cookie: alice, origin: APP_ORIGIN } })).statusCode, 303)
  const again = await signIn(ALICE)
  h.ims.fail('revoke', { status: 500 }, 2)
  t.equal((await send({ method: 'POST', url: LOGOUT, headers: { cookie: again, origin: APP_ORIGIN } })).statusCode, 303, 'sign-out completes when revocation fails')

  // A corrupt record.
  const third = await signIn(ALICE)
  const raw = (await h.backend.get(tokenKey(ALICE)))!
  await h.backend.set(tokenKey(ALICE), raw.replace(/\.([A-Za-z0-9_-])([A-Za-z0-9_-]*)$/, (_m, c: string, rest: string) => `.${c === 'A' ? 'B' : 'A'}${rest}`))
  t.equal((await token(third)).code, 'LR_LOGIN_REQUIRED', 'a corrupt record signs Alice out')

  // The scan. Browsers' pages from the app count as answers too (IMS's own pages carry codes by design).
  for (const browser of browsers) {
    for (const page of browser.history) {
      if (new URL(page.url).origin === APP_ORIGIN) answers.push(`${JSON.stringify(page.headers)}\n${page.body}`)
    }
  }
  const client = h.ims.clients[0]!
  const issued = h.ims.issuedSecrets()
  t.ok(issued.length >= 10, `${issued.length} codes and tokens issued in the lifecycle`)
  const secrets = [
    ...issued,
    client.clientSecret,
    Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64'),
    COOKIE_SECRET,
    ...keyEncodings(KEY_A.key),
    ...keyEncodings(KEY_B.key)
  ]
  // What the browser legitimately holds must still never be logged.
  const browserHeld = browsers.flatMap((browser) => browser.history.flatMap((page) => setCookies(page.headers)))
    .filter((cookie) => cookie.value !== '')
    .flatMap((cookie) => [cookie.value, cookie.value.split('.')[0]!])
    .filter((value) => value.length >= 32)
  t.ok(browserHeld.length >= 10, 'verifiers, states and session ids collected')
  t.same(leakedSecrets(h.logs, [...secrets, ...browserHeld]), [], 'no secret, verifier, state or session id in any log line')
  t.same(leakedSecrets(answers, secrets), [], 'no token, code or secret in any answer of the app')
  const stored = [...(await rawRecords(h.backend)).values()]
  t.same(leakedSecrets(stored, [...secrets, ALICE, BOB]), [], 'nothing readable at rest: no token, secret or user id in a stored record')
  t.notOk(answers.some((text) => STACK_TRACE.test(text)), 'no stack trace in any answer')
})

test('every failure path of sign-in and token use answers without a stack trace or internal error text, in HTML and in JSON', async (t) => {
  const { backend, down } = switchableBackend()
  const h = await harness({ backend })
  t.teardown(h.close)
  const sub = h.ims.users[0]!.sub
  const { privateKey } = await generateKeyPair('RS256')
  const now = Math.floor(Date.now() / 1000)
  const forgedIdToken = await new SignJWT({ sub, iss: h.ims.issuer, aud: h.ims.clients[0]!.clientId, iat: now, exp: now + 3600 }).setProtectedHeader({ alg: 'RS256', kid: 'attacker' }).sign(privateKey)

  /** A genuine login up to the callback URL, to be spoilt by each path. */
  const genuine = async (): Promise<{ url: string, cookie: string, code: string, state: string }> => {
    const login = await startLogin(h.app)
    const callback = await authorizeAs(h.browser(), login.authorizeUrl, sub)
    return { url: `${callback.pathname}${callback.search}`, cookie: login.cookieHeader, code: callback.searchParams.get('code')!, state: login.state }
  }
  const paths: Array<{ name: string, status: number, code: string, request: () => Promise<InjectOptions>, after?: () => void }> = [
    { name: 'forged state', status: 400, code: 'LR_BAD_STATE', request: async () => { const g = await genuine(); return { url: `${CALLBACK}?code=${g.code}&state=forged`, headers: { cookie: g.cookie } } } },
    { name: 'missing verifier cookie', status: 400, code: 'LR_BAD_STATE', request: async () => { const g = await genuine(); return { url: g.url, headers: { cookie: `${NAMES.state}=${g.state}` } } } },
    { name: 'provider error with a hostile description', status: 401, code: 'LR_ACCESS_DENIED', request: async () => ({ url: `${CALLBACK}?error=access_denied&error_description=${encodeURIComponent('at evil (/srv/x.ts:1:1) <script>')}` }) },
    { name: 'code refused by IMS (invalid_grant)', status: 400, code: 'LR_IMS_ERROR', request: async () => { const g = await genuine(); h.ims.fail('token', { oauthError: 'invalid_grant', description: 'Error: at Object.<anonymous> (/ims/token.ts:12:3)' }); return { url: g.url, headers: { cookie: g.cookie } } } },
    { name: 'IMS 500', status: 502, code: 'LR_IMS_UNAVAILABLE', request: async () => { const g = await genuine(); h.ims.fail('token', { status: 500, body: 'java.lang.NullPointerException\n\tat com.adobe.ims.Token(Token.java:42)' }); return { url: g.url, headers: { cookie: g.cookie } } } },
    { name: 'IMS connection reset', status: 502, code: 'LR_IMS_UNAVAILABLE', request: async () => { const g = await genuine(); h.ims.fail('token', { reset: true }); return { url: g.url, headers: { cookie: g.cookie } } } },
    { name: 'IMS answering HTML with 200', status: 400, code: 'LR_IMS_ERROR', request: async () => { const g = await genuine(); h.ims.fail('token', { status: 200, body: '<html>gateway</html>', contentType: 'text/html' }); return { url: g.url, headers: { cookie: g.cookie } } } },
    { name: 'id_token failure', status: 502, code: 'LR_INVALID_ID_TOKEN', request: async () => { const g = await genuine(); h.ims.fail('token', { status: 200, body: JSON.stringify({ access_token: 'forged-access', refresh_token: 'forged-refresh', id_token: forgedIdToken, token_type: 'bearer', expires_in: 86399 }) }); return { url: g.url, headers: { cookie: g.cookie } } } },
    { name: 'store down at sign-in', status: 503, code: 'LR_STORE_UNAVAILABLE', request: async () => { const g = await genuine(); down(true); return { url: g.url, headers: { cookie: g.cookie } } }, after: () => { down(false) } },
    { name: 'cross-site sign-out', status: 403, code: 'LR_BAD_ORIGIN', request: async () => ({ method: 'POST', url: LOGOUT, headers: { origin: 'https://evil.example' } }) },
    { name: 'token without a session', status: 401, code: 'LR_LOGIN_REQUIRED', request: async () => ({ url: '/token' }) }
  ]
  for (const path of paths) {
    for (const accept of ['text/html', 'application/json']) {
      const options = await path.request()
      const response = await h.app.inject({ ...options, headers: { ...options.headers, accept } })
      path.after?.()
      h.ims.clearFaults()
      const what = `${path.name} (${accept})`
      t.equal(response.statusCode, path.status, `${what}: ${path.status}`)
      t.ok(response.body.includes(path.code), `${what}: names ${path.code}`)
      t.notMatch(response.body, STACK_TRACE, `${what}: no stack frame or source path`)
      t.notMatch(response.body, /"stack"|ImsError|StoreRecordError|undici|UND_ERR|ECONNREFUSED|NullPointer|<script/, `${what}: no internal error text`)
      t.notOk(JSON.stringify(response.headers).includes('forged-'), `${what}: nothing of the token response in the headers`)
    }
  }
  t.same([...(await rawRecords(h.backend)).keys()].filter((key) => key.startsWith('tokens:')), [], 'no failed path stored tokens')
  t.notOk(h.logs.some((line) => line.includes('forged-access') || line.includes('forged-refresh') || line.includes(forgedIdToken)), 'unverified tokens are not logged either')
})

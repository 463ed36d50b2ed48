// Attacks a security reviewer asks about, each played end to end against the mock IMS:
// login CSRF, code injection, forged id_tokens, a planted state carrying an evil returnTo,
// replayed callbacks, hostile sizes, and cross-site or odd-origin sign-outs.
import { test } from 'tap'
import { generateKeyPair, SignJWT } from 'jose'
import { request } from 'undici'
import { tokenKey } from '../lib/auth/token-manager.js'
import { CALLBACK, LOGIN, LOGOUT, authorizeAs, cookieNames, setCookies, signInUser, startLogin } from './helpers/flows.js'
import { APP_ORIGIN, harness, signInRecords, type Harness } from './helpers/setup.js'

const NAMES = cookieNames(true)
const json = { accept: 'application/json' }
const ATTACKER = 'A77AC6E5000000000000000A@AdobeID'
const VICTIM = 'F1C71A00000000000000000F@AdobeID'
const users = [{ sub: VICTIM }, { sub: ATTACKER }]

async function whoAmI (h: Harness, cookie: string | undefined): Promise<string | null> {
  const response = await h.app.inject({ url: '/whoami', headers: cookie === undefined ? {} : { cookie } })
  return response.json().user
}

const withWhoAmI = { routes: (app: Harness['app']) => app.get('/whoami', async (request) => ({ user: (await request.lightroomUserId()) ?? null })) }

test('login CSRF: the attacker\'s callback URL (their code and state) opened in the victim\'s browser signs nobody in', async (t) => {
  const h = await harness({ ims: { users }, ...withWhoAmI })
  t.teardown(h.close)
  // The attacker runs a login in their own browser and stops before the callback.
  const attacker = h.browser()
  const attackerLogin = await attacker.get(LOGIN)
  const trap = await authorizeAs(attacker, new URL(attackerLogin.location!), ATTACKER)

  // The victim opens it: once with no flow cookies at all, once in the middle of a login of their own.
  const fresh = h.browser()
  const busy = h.browser()
  await busy.get(LOGIN)
  for (const [name, victim] of [['without flow cookies', fresh], ['in the middle of their own login', busy]] as const) {
    const page = await victim.get(`${trap.pathname}${trap.search}`, json)
    t.equal(page.status, 400, `refused ${name}`)
    t.equal(JSON.parse(page.body).code, 'LR_BAD_STATE')
    t.equal(await whoAmI(h, victim.cookieHeader() || undefined), null, 'the victim is not signed in as the attacker')
  }
  t.equal(h.ims.count('token'), 0, 'the attacker\'s code never reached the token endpoint')
  t.same(await signInRecords(h.backend), [], 'nothing stored')
})

test('code injection: the attacker\'s code with the victim\'s genuine state and cookies fails PKCE at IMS', async (t) => {
  const h = await harness({ ims: { users }, ...withWhoAmI })
  t.teardown(h.close)
  // The attacker's code is bound to the attacker's PKCE challenge.
  const attacker = await startLogin(h.app)
  const stolen = await authorizeAs(h.browser(), attacker.authorizeUrl, ATTACKER)
  // The victim's browser carries a genuine, matching state pair and its own verifier.
  const victim = await startLogin(h.app)
  const response = await h.app.inject({
    url: `${CALLBACK}?code=${stolen.searchParams.get('code')}&state=${encodeURIComponent(victim.state)}`,
    headers: { ...json, cookie: victim.cookieHeader }
  })
  t.equal(response.statusCode, 400)
  t.equal(response.json().code, 'LR_IMS_ERROR')
  t.equal(h.ims.count('token:authorization_code'), 1, 'the state checked out, so the code went to IMS')
  t.equal(h.ims.count('token:authorization_code:error'), 1, 'IMS refused it: the verifier does not match the code\'s challenge')
  t.notOk(setCookies(response.headers).some((c) => c.name === NAMES.session && c.value !== ''), 'no session cookie')
  t.same(await signInRecords(h.backend), [], 'nothing stored for anyone')
})

test('an id_token not signed by the provider signs nobody in, whatever the token response says', async (t) => {
  const h = await harness({ ims: { users } })
  t.teardown(h.close)
  const jwks = await (await request(`${h.ims.origin}/ims/keys`)).body.json() as { keys: Array<{ kid: string }> }
  const { privateKey } = await generateKeyPair('RS256')
  const now = Math.floor(Date.now() / 1000)
  const claims = { sub: VICTIM, iss: h.ims.issuer, aud: h.ims.clients[0]!.clientId, iat: now, exp: now + 3600 }
  const forgeries: Array<[string, string]> = [
    // The provider's kid, the attacker's key: only the signature can tell.
    ['signed with another key under the provider\'s kid', await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwks.keys[0]!.kid }).sign(privateKey)],
    ['alg none', `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`],
    ['HS256 keyed with the client secret', await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(Buffer.from(h.ims.clients[0]!.clientSecret))]
  ]
  for (const [name, idToken] of forgeries) {
    const login = await startLogin(h.app)
    const callback = await authorizeAs(h.browser(), login.authorizeUrl, ATTACKER)
    // A tampered token response: well-formed, with tokens the mock never issued.
    h.ims.fail('token', { status: 200, body: JSON.stringify({ access_token: 'forged-access', refresh_token: 'forged-refresh', id_token: idToken, token_type: 'bearer', expires_in: 86399 }) })
    const response = await h.app.inject({ url: `${callback.pathname}${callback.search}`, headers: { ...json, cookie: login.cookieHeader } })
    t.equal(response.statusCode, 502, name)
    t.equal(response.json().code, 'LR_INVALID_ID_TOKEN', name)
    t.notOk(setCookies(response.headers).some((c) => c.name === NAMES.session && c.value !== ''), `${name}: no session`)
  }
  t.equal(await h.backend.get(tokenKey(VICTIM)), undefined, 'nothing stored under the claimed user')
  t.same(await signInRecords(h.backend), [], 'nothing stored at all')
  t.notOk(h.logs.some((line) => line.includes('forged-access') || line.includes('forged-refresh')), 'the unverified tokens are not logged')
})

test('a planted state cookie carrying an evil returnTo is refused: no flow record was ever started for it', async (t) => {
  const h = await harness({ ims: { users } })
  t.teardown(h.close)
  // Suppose an attacker could plant cookies (a sibling subdomain without __Host-): state and cookie agree.
  for (const evil of ['//evil.example', '/\\evil.example', 'https://evil.example/', '/.//evil.example']) {
    const login = await startLogin(h.app)
    const planted = `${'P'.repeat(43)}.${Buffer.from(evil).toString('base64url')}`
    const authorize = new URL(login.authorizeUrl)
    authorize.searchParams.set('state', planted)
    const callback = await authorizeAs(h.browser(), authorize, VICTIM)
    t.equal(callback.searchParams.get('state'), planted)
    const response = await h.app.inject({ url: `${callback.pathname}${callback.search}`, headers: { cookie: `${NAMES.state}=${planted}; ${NAMES.verifier}=${login.verifier}` } })
    t.equal(response.statusCode, 400, `refused with ${JSON.stringify(evil)} planted`)
    t.equal(response.headers.location, undefined, 'and sent nowhere')
  }
})

test('a callback URL replayed after a successful sign-in is refused without a second token call', async (t) => {
  const h = await harness({ ims: { users }, ...withWhoAmI })
  t.teardown(h.close)
  const { browser, done } = await signInUser(h, VICTIM)
  t.equal(done.status, 303)
  const used = browser.history.find((page) => new URL(page.url).pathname === CALLBACK)!
  const calls = h.ims.count('token')
  const sameBrowser = await browser.get(used.url, json)
  t.equal(sameBrowser.status, 400, 'the flow cookies were spent by the first use')
  t.equal(JSON.parse(sameBrowser.body).code, 'LR_BAD_STATE')
  const otherBrowser = await h.browser().get(used.url, json)
  t.equal(otherBrowser.status, 400, 'and another browser has none')
  t.equal(h.ims.count('token'), calls, 'no token call for either replay')
  t.equal(await whoAmI(h, browser.cookieHeader()), VICTIM, 'the original session is unaffected')
})

test('hostile sizes: a huge state, code or verifier cookie is a clean 400 with no token call', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const login = await startLogin(h.app)
  const huge = 'S'.repeat(100_000)
  const cases: Array<[string, { url: string, headers: Record<string, string> }]> = [
    ['a 100 KB state', { url: `${CALLBACK}?code=abc&state=${huge}`, headers: { ...json, cookie: login.cookieHeader } }],
    ['a 100 KB code with a genuine state', { url: `${CALLBACK}?code=${'c'.repeat(100_000)}&state=${encodeURIComponent(login.state)}`, headers: { ...json, cookie: login.cookieHeader } }],
    ['a 100 KB verifier', { url: `${CALLBACK}?code=abc&state=${encodeURIComponent(login.state)}`, headers: { ...json, cookie: `${NAMES.state}=${login.state}; ${NAMES.verifier}=${'v'.repeat(100_000)}` } }]
  ]
  for (const [name, options] of cases) {
    const response = await h.app.inject(options)
    t.equal(response.statusCode, 400, name)
    t.equal(response.json().code, 'LR_BAD_STATE', name)
    t.ok(response.body.length < 1000, `${name}: the answer does not echo the input`)
  }
  t.equal(h.ims.count('token'), 0, 'no token call for any of them')
})

test('a long deep link still signs in: returnTo that would push the state past IMS\'s 4096 characters falls back to home', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  // Under 2048 characters as typed, several times that once percent-encoded.
  for (const returnTo of [`/${'é'.repeat(2000)}`, `/${'\u{1F600}'.repeat(1000)}`, `/${'"'.repeat(2000)}`, `/${'a'.repeat(2047)}`]) {
    const login = await startLogin(h.app, { returnTo })
    t.ok(login.state.length <= 4096, `state of ${login.state.length} characters for a ${returnTo.length}-character returnTo`)
    const { done } = await signInUser(h, h.ims.users[0]!.sub, returnTo)
    t.equal(done.status, 303, 'IMS accepted the sign-in')
    t.ok(done.location === '/' || done.location === returnTo, 'lands on the deep link or home')
  }
})

test('logout refuses every origin but its own (and allowedOrigins), and accepts the app\'s own HTML forms', async (t) => {
  const h = await harness({ ims: { users }, plugin: { allowedOrigins: ['https://admin.app.test'] }, ...withWhoAmI, routes: (app) => { withWhoAmI.routes(app); app.post('/host-form', async () => ({ ok: true })) } })
  t.teardown(h.close)
  const { cookie } = await signInUser(h, VICTIM)
  const foreign = ['https://evil.example', 'null', 'https://app.test.evil.example', 'http://app.test', 'https://app.test:8443', 'https://sub.app.test', 'https://app.test/', '']
  for (const origin of foreign) {
    const response = await h.app.inject({ method: 'POST', url: LOGOUT, headers: { ...json, cookie, origin } })
    t.equal(response.statusCode, 403, `Origin ${JSON.stringify(origin)} refused`)
    t.equal(response.json().code, 'LR_BAD_ORIGIN')
    t.equal(response.headers['set-cookie'], undefined, 'the session cookie is left alone')
  }
  const fetchSite = await h.app.inject({ method: 'POST', url: LOGOUT, headers: { ...json, cookie, 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' }, payload: '' })
  t.equal(fetchSite.statusCode, 403, 'a cross-site form post without Origin is refused by Sec-Fetch-Site')
  t.equal(h.ims.count('revoke'), 0, 'nothing revoked')
  t.equal(await whoAmI(h, cookie), VICTIM, 'still signed in')

  // The app's own sign-out buttons: plain forms, urlencoded or multipart, from its origin or an allowed one.
  for (const [origin, type, payload] of [
    [APP_ORIGIN, 'application/x-www-form-urlencoded', ''],
    ['https://admin.app.test', 'multipart/form-data; boundary=b', '--b--\r\n']
  ] as const) {
    const session = (await signInUser(h, VICTIM)).cookie
    const response = await h.app.inject({ method: 'POST', url: LOGOUT, headers: { cookie: session, origin, 'content-type': type }, payload })
    t.equal(response.statusCode, 303, `a ${type.split(';')[0]} form from ${origin} signs out`)
    t.equal(await whoAmI(h, session), null, 'and the session is over')
  }
  const hostRoute = await h.app.inject({ method: 'POST', url: '/host-form', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=b' })
  t.equal(hostRoute.statusCode, 415, 'the host app\'s own routes still parse no forms: the plugin added nothing outside its routes')
})

// Real IMS as Adobe documents it, played by the mock: each variant signs in, and what IMS may send
// back on the redirect or at the code exchange ends the sign-in cleanly with its own code.
import { test, type Test } from 'tap'
import { decodeProtectedHeader } from 'jose'
import { request } from 'undici'
import { tokenKey } from '../lib/auth/token-manager.js'
import { createMockIms } from '../lib/testing/index.js'
import { CALLBACK, LOGIN, LOGOUT, authorizeAs, signInUser, startLogin } from './helpers/flows.js'
import { APP_ORIGIN, harness, type Harness, type HarnessOptions } from './helpers/setup.js'

const json = { accept: 'application/json' }

async function started (t: Test, options: HarnessOptions = {}): Promise<Harness> {
  const h = await harness(options)
  t.teardown(h.close)
  return h
}

/** A genuine token response for `login`'s flow, fetched straight from the mock (nonce and all). */
async function genuineTokens (h: Harness, login: Awaited<ReturnType<typeof startLogin>>): Promise<{ code: string, body: Record<string, unknown> }> {
  const callback = await authorizeAs(h.browser(), login.authorizeUrl, h.ims.users[0]!.sub)
  const code = callback.searchParams.get('code')!
  const { clientId, clientSecret } = h.ims.clients[0]!
  const res = await request(`${h.ims.origin}/ims/token/v3`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: login.verifier, redirect_uri: `${APP_ORIGIN}/auth/lightroom/callback`, client_id: clientId, client_secret: clientSecret }).toString()
  })
  return { code, body: await res.body.json() as Record<string, unknown> }
}

for (const idTokenIssuer of ['host', 'host/ims'] as const) {
  test(`IMS id_tokens with iss = ${idTokenIssuer === 'host' ? 'the bare host' : '{host}/ims'}, an x5u file name in the header and a top-level sub sign in`, async (t) => {
    const h = await started(t, { ims: { idTokenIssuer } })
    const login = await startLogin(h.app)
    const { code, body } = await genuineTokens(h, login)
    const header = decodeProtectedHeader(body.id_token as string)
    t.equal(header.x5u, 'ims_na1-key-at-1.cer', 'the header carries IMS\'s bare x5u')
    t.equal(body.sub, h.ims.users[0]!.sub, 'and the response a top-level sub')
    t.not(decodeProtectedHeader(body.access_token as string).kid, header.kid, 'the access token\'s kid is not a published one')
    h.ims.fail('token', { status: 200, body: JSON.stringify(body) })
    const response = await h.app.inject({ url: `${CALLBACK}?code=${code}&state=${encodeURIComponent(login.state)}`, headers: { cookie: login.cookieHeader } })
    t.equal(response.statusCode, 303, 'signed in')
    // And a full flow through the app, refresh (no id_token, a new refresh token) included.
    const { cookie } = await signInUser(h, h.ims.users[0]!.sub)
    const token = await h.app.inject({ url: '/token', headers: { cookie } })
    t.equal(token.statusCode, 200)
    const before = (await h.store.get<{ refreshToken: string }>(tokenKey(h.ims.users[0]!.sub)))!.value.refreshToken
    await h.app.lightroom.tokenFor(h.ims.users[0]!.sub, { force: true })
    const after = (await h.store.get<{ refreshToken: string }>(tokenKey(h.ims.users[0]!.sub)))!.value.refreshToken
    t.not(after, before, 'the refresh stored IMS\'s new refresh token')
  })
}

test('a generic OpenID provider\'s id_token with iss {issuer}/ims is refused: that form is accepted for IMS only', async (t) => {
  const h = await started(t, { ims: { flavor: 'generic', idTokenIssuer: 'host/ims' } })
  const browser = h.browser()
  const login = await browser.get(LOGIN)
  const callback = await authorizeAs(browser, new URL(login.location!), h.ims.users[0]!.sub)
  const response = await browser.get(`${callback.pathname}${callback.search}`, json)
  t.equal(response.status, 502)
  t.equal(JSON.parse(response.body).code, 'LR_INVALID_ID_TOKEN')
})

test('a token response naming another user than its id_token is refused', async (t) => {
  const h = await started(t)
  const login = await startLogin(h.app)
  const { code, body } = await genuineTokens(h, login)
  h.ims.fail('token', { status: 200, body: JSON.stringify({ ...body, sub: 'SOMEONE-ELSE@AdobeID' }) })
  const response = await h.app.inject({ url: `${CALLBACK}?code=${code}&state=${encodeURIComponent(login.state)}`, headers: { ...json, cookie: login.cookieHeader } })
  t.equal(response.statusCode, 502)
  t.equal(response.json().code, 'LR_INVALID_ID_TOKEN')
})

test('an id_token minted for another sign-in (its nonce) does not complete this one', async (t) => {
  const h = await started(t)
  const other = await startLogin(h.app)
  const { body } = await genuineTokens(h, other)
  const login = await startLogin(h.app)
  t.not(login.authorizeUrl.searchParams.get('nonce'), other.authorizeUrl.searchParams.get('nonce'), 'each login sends its own nonce')
  h.ims.fail('token', { status: 200, body: JSON.stringify(body) })
  const response = await h.app.inject({ url: `${CALLBACK}?code=anything&state=${encodeURIComponent(login.state)}`, headers: { ...json, cookie: login.cookieHeader } })
  t.equal(response.statusCode, 502)
  t.equal(response.json().code, 'LR_INVALID_ID_TOKEN')
})

test('the mock takes scopes separated by commas or spaces, as IMS does', async (t) => {
  const ims = await createMockIms()
  t.teardown(ims.close)
  for (const scope of ['openid,AdobeID,lr_partner_apis,lr_partner_rendition_apis', 'openid AdobeID lr_partner_apis lr_partner_rendition_apis']) {
    const url = new URL(`${ims.origin}/ims/authorize/v2`)
    url.search = new URLSearchParams({ client_id: 'test-client', redirect_uri: 'https://app.test/cb', response_type: 'code', scope }).toString()
    const res = await request(url)
    const location = new URL(String(res.headers.location))
    t.ok(location.searchParams.get('code'), `a code for ${JSON.stringify(scope)}`)
  }
})

test('any 4xx at the code exchange is a clean sign-in failure with the OAuth error in the log, never a 5xx', async (t) => {
  const h = await started(t, { ims: { unknownCodeError: 'access_denied' } })
  const faults: Array<[string, Parameters<Harness['ims']['fail']>[1] | undefined]> = [
    ['access_denied', undefined],
    ['slow_down', { oauthError: 'slow_down', status: 429 }],
    ['request_timeout', { oauthError: 'request_timeout', status: 408 }],
    ['invalid_client', { oauthError: 'invalid_client' }]
  ]
  for (const [error, fault] of faults) {
    const login = await startLogin(h.app)
    if (fault !== undefined) h.ims.fail('token:authorization_code', fault)
    const response = await h.app.inject({ url: `${CALLBACK}?code=bogus&state=${encodeURIComponent(login.state)}`, headers: { ...json, cookie: login.cookieHeader } })
    t.equal(response.statusCode, 400, `${error}: 400`)
    t.equal(response.json().code, 'LR_IMS_ERROR')
    t.ok(h.logs.some((line) => line.includes('code exchange failed') && line.includes(`"error":"${error}"`)), `${error} is in the log`)
  }
  t.equal(h.ims.count('token:authorization_code'), 4, 'the 429 and 408 were not retried: a code is single-use')
})

test('prompt and login_hint pass through to IMS, allow-listed', async (t) => {
  const h = await started(t, { ims: { users: [{ sub: 'A@AdobeID', email: 'a@example.com' }, { sub: 'B@AdobeID', email: 'b@example.com' }] } })
  const response = await h.app.inject({ url: `${LOGIN}?prompt=login&login_hint=b@example.com` })
  t.equal(response.statusCode, 302)
  const authorize = new URL(String(response.headers.location))
  t.equal(authorize.searchParams.get('prompt'), 'login')
  t.equal(authorize.searchParams.get('login_hint'), 'b@example.com')
  for (const query of ['prompt=none%20login', 'prompt=bogus', 'login_hint=a%26prompt%3Dnone', `login_hint=${'x'.repeat(300)}`, 'prompt=none&prompt=login']) {
    const refused = await h.app.inject({ url: `${LOGIN}?${query}`, headers: json })
    t.equal(refused.statusCode, 400, `${query} refused`)
    t.equal(refused.json().code, 'LR_BAD_REQUEST')
  }
})

test('prompt=none at a mock that must ask for consent ends with LR_CONSENT_REQUIRED, without a token call', async (t) => {
  const h = await started(t, { ims: { consent: true } })
  const browser = h.browser()
  const login = await browser.get(`${LOGIN}?prompt=none`)
  const atIms = await browser.get(login.location!)
  const back = new URL(atIms.location!)
  t.equal(back.searchParams.get('error'), 'consent_required')
  const response = await browser.get(`${back.pathname}${back.search}`, json)
  t.equal(response.status, 401)
  t.equal(JSON.parse(response.body).code, 'LR_CONSENT_REQUIRED')
  t.equal(h.ims.count('token'), 0)
})

test('each error IMS sends back on the redirect has its own code', async (t) => {
  const h = await started(t)
  const expected: Record<string, [number, string]> = {
    access_denied: [401, 'LR_ACCESS_DENIED'],
    login_required: [401, 'LR_IMS_LOGIN_REQUIRED'],
    consent_required: [401, 'LR_CONSENT_REQUIRED'],
    interaction_required: [401, 'LR_INTERACTION_REQUIRED'],
    invalid_scope: [400, 'LR_INVALID_SCOPE'],
    server_error: [400, 'LR_IMS_ERROR']
  }
  for (const [error, [status, code]] of Object.entries(expected)) {
    const response = await h.app.inject({ url: `${CALLBACK}?error=${error}&state=x`, headers: json })
    t.equal(response.statusCode, status, error)
    t.equal(response.json().code, code, error)
  }
})

test('signOutAtIms: after our sign-out the browser goes through IMS\'s logout and back to returnTo', async (t) => {
  const h = await started(t, { plugin: { signOutAtIms: true } })
  const { cookie } = await signInUser(h, h.ims.users[0]!.sub)
  const response = await h.app.inject({ method: 'POST', url: `${LOGOUT}?returnTo=/bye`, headers: { cookie, origin: APP_ORIGIN } })
  t.equal(response.statusCode, 303)
  const logout = new URL(String(response.headers.location))
  t.equal(`${logout.origin}${logout.pathname}`, `${h.ims.origin}/ims/logout/v1`)
  t.equal(logout.searchParams.get('client_id'), 'test-client')
  t.equal(logout.searchParams.get('redirect_uri'), `${APP_ORIGIN}/bye`)
  t.notOk(logout.search.includes('token'), 'no token in the URL')
  const atIms = await request(logout)
  t.equal(atIms.statusCode, 302)
  t.equal(atIms.headers.location, `${APP_ORIGIN}/bye`, 'IMS sends the browser back')
  t.equal((await h.app.inject({ url: '/token', headers: { cookie } })).statusCode, 401, 'and the session is over')
})

test('signOutAtIms with a generic provider uses its end_session_endpoint and post_logout_redirect_uri', async (t) => {
  const h = await started(t, { ims: { flavor: 'generic' }, plugin: { signOutAtIms: true } })
  const response = await h.app.inject({ method: 'POST', url: LOGOUT, headers: { origin: APP_ORIGIN } })
  const logout = new URL(String(response.headers.location))
  t.equal(logout.pathname, '/realms/test/protocol/openid-connect/logout')
  t.equal(logout.searchParams.get('post_logout_redirect_uri'), `${APP_ORIGIN}/`)
})

test('signOutAtIms is off by default and must be a boolean', async (t) => {
  const h = await started(t)
  const response = await h.app.inject({ method: 'POST', url: LOGOUT, headers: { origin: APP_ORIGIN } })
  t.equal(response.headers.location, '/')
  await t.rejects(harness({ sharedIms: h.ims, plugin: { signOutAtIms: 'yes' as unknown as boolean } }), { code: 'LR_INVALID_OPTION', option: 'signOutAtIms' })
})

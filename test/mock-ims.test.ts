// The mock IMS, specified over real HTTP: discovery, the code flow with PKCE,
// client authentication, token contents, refresh, userinfo, revocation, consent.
import { test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'undici'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { createMockIms } from '../lib/testing/index.js'
import type { MockIms, MockImsOptions } from '../lib/testing/index.js'
import { fakeClock } from './helpers/clock.js'

const CALLBACK = 'https://app.example/auth/lightroom/callback'
const LR_SCOPES = 'openid,AdobeID,lr_partner_apis,offline_access'
const ADA = 'A1B2C3D4E5F6A7B8C9D0E1F2@AdobeID'

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: Record<string, unknown>
}

interface Tokens {
  access_token: string
  refresh_token?: string
  id_token?: string
  token_type: string
  expires_in: number
}

async function send (url: string, init: { method?: 'GET' | 'POST', headers?: Record<string, string>, body?: string } = {}): Promise<Reply> {
  const res = await request(url, { method: init.method ?? 'GET', headers: init.headers, body: init.body })
  const text = await res.body.text()
  let json: Record<string, unknown> = {}
  try { json = JSON.parse(text) } catch {}
  return { status: res.statusCode, headers: res.headers, text, json }
}

async function start (t: { teardown: (fn: () => unknown) => void }, options?: MockImsOptions): Promise<MockIms> {
  const ims = await createMockIms(options)
  t.teardown(() => ims.close())
  return ims
}

async function endpoints (ims: MockIms): Promise<Record<string, string>> {
  return (await send(ims.discoveryUrl)).json as Record<string, string>
}

/** Runs authorize and returns where the browser was sent. */
async function authorize (ims: MockIms, params: Record<string, string>): Promise<URL> {
  const url = new URL((await endpoints(ims))['authorization_endpoint'] as string)
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
  const reply = await send(url.href)
  if (reply.status !== 302) throw new Error(`authorize answered ${reply.status}: ${reply.text}`)
  return new URL(reply.headers['location'] as string)
}

async function codeFor (ims: MockIms, params: Record<string, string> = {}): Promise<string> {
  const back = await authorize(ims, { client_id: 'test-client', redirect_uri: CALLBACK, response_type: 'code', scope: LR_SCOPES, ...params })
  const code = back.searchParams.get('code')
  if (code === null) throw new Error(`no code: ${back.href}`)
  return code
}

const basic = (id = 'test-client', secret = 'test-secret'): Record<string, string> =>
  ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` })

async function tokenCall (ims: MockIms, params: Record<string, string>, headers: Record<string, string> = basic(), query = ''): Promise<Reply> {
  const url = (await endpoints(ims))['token_endpoint'] as string
  return await send(url + query, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params).toString()
  })
}

async function exchange (ims: MockIms, code: string, extra: Record<string, string> = {}): Promise<Reply> {
  return await tokenCall(ims, { grant_type: 'authorization_code', code, redirect_uri: CALLBACK, ...extra })
}

async function refresh (ims: MockIms, refreshToken: string, extra: Record<string, string> = {}): Promise<Reply> {
  return await tokenCall(ims, { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra })
}

/** A whole sign-in, returning the token response. */
async function signIn (ims: MockIms, params: Record<string, string> = {}): Promise<Tokens> {
  const reply = await exchange(ims, await codeFor(ims, params))
  if (reply.status !== 200) throw new Error(`token answered ${reply.status}: ${reply.text}`)
  return reply.json as unknown as Tokens
}

async function userinfo (ims: MockIms, accessToken: string): Promise<Reply> {
  return await send((await endpoints(ims))['userinfo_endpoint'] as string, { headers: { authorization: `Bearer ${accessToken}` } })
}

async function revoke (ims: MockIms, token: string, headers: Record<string, string> = basic()): Promise<Reply> {
  return await send((await endpoints(ims))['revocation_endpoint'] as string, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ token }).toString()
  })
}

function pkce (): { verifier: string, challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

test('ims discovery: bare-host issuer, /ims endpoints, no PKCE methods listed', async (t) => {
  const ims = await start(t)
  t.equal(ims.issuer, ims.origin)
  t.equal(ims.discoveryUrl, `${ims.origin}/ims/.well-known/openid-configuration`)
  const reply = await send(ims.discoveryUrl)
  t.equal(reply.status, 200)
  t.equal(reply.headers['content-type'], 'application/json;charset=utf-8')
  t.match(reply.headers['x-debug-id'], /^[0-9a-f-]{36}$/)
  t.match(reply.json, {
    issuer: ims.origin,
    authorization_endpoint: `${ims.origin}/ims/authorize/v2`,
    token_endpoint: `${ims.origin}/ims/token/v3`,
    userinfo_endpoint: `${ims.origin}/ims/userinfo/v2`,
    revocation_endpoint: `${ims.origin}/ims/revoke`,
    jwks_uri: `${ims.origin}/ims/keys`,
    end_session_endpoint: `${ims.origin}/ims/logout/v1`,
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    scopes_supported: ['openid', 'AdobeID', 'lr_partner_apis', 'lr_partner_rendition_apis', 'offline_access', 'email', 'profile']
  })
  t.ok((reply.json['grant_types_supported'] as string[]).includes('authorization_code'))
  t.ok((reply.json['grant_types_supported'] as string[]).includes('refresh_token'))
  t.notOk('code_challenge_methods_supported' in reply.json)

  for (const path of ['/', '/.well-known/openid-configuration', '/ims/nothing']) {
    const html = await send(ims.origin + path)
    t.equal(html.status, 404, path)
    t.match(html.headers['content-type'], /^text\/html/, `${path} answers HTML, as the real bare host does`)
    t.match(html.headers['x-debug-id'], /.+/)
  }

  const keys = await send(`${ims.origin}/ims/keys`)
  t.match(keys.json, { keys: [{ kty: 'RSA', alg: 'RS256', use: 'sig', kid: /^mock-ims-/ }] })

  const wrongMethod = await send(ims.discoveryUrl, { method: 'POST' })
  t.equal(wrongMethod.status, 405)
  t.equal(wrongMethod.headers['allow'], 'GET')
})

test('generic flavor: Keycloak-like paths under a realm issuer, a whole sign-in works', async (t) => {
  const ims = await start(t, { flavor: 'generic' })
  const oidc = `${ims.origin}/realms/test/protocol/openid-connect`
  t.equal(ims.issuer, `${ims.origin}/realms/test`)
  t.equal(ims.discoveryUrl, `${ims.issuer}/.well-known/openid-configuration`)
  t.match(await endpoints(ims), {
    issuer: ims.issuer,
    authorization_endpoint: `${oidc}/auth`,
    token_endpoint: `${oidc}/token`,
    userinfo_endpoint: `${oidc}/userinfo`,
    revocation_endpoint: `${oidc}/revoke`,
    jwks_uri: `${oidc}/certs`,
    end_session_endpoint: `${oidc}/logout`,
    code_challenge_methods_supported: ['S256', 'plain']
  })
  t.equal((await send(`${ims.origin}/ims/.well-known/openid-configuration`)).status, 404)

  const tokens = await signIn(ims)
  const jwks = createLocalJWKSet((await send(`${oidc}/certs`)).json as never)
  const { payload } = await jwtVerify(tokens.id_token as string, jwks, { issuer: ims.issuer, audience: 'test-client' })
  t.equal(payload.sub, ADA)
  t.equal((await userinfo(ims, tokens.access_token)).status, 200)
})

test('code flow with S256: tokens shaped like IMS, id_token verifies against the served JWKS', async (t) => {
  const ims = await start(t)
  const { verifier, challenge } = pkce()
  const back = await authorize(ims, {
    client_id: 'test-client',
    redirect_uri: CALLBACK,
    response_type: 'code',
    scope: 'openid AdobeID lr_partner_apis offline_access email profile',
    state: 'st<a>te "&" ünïcode',
    nonce: 'n-0S6_WzA2Mj',
    code_challenge: challenge,
    code_challenge_method: 'S256'
  })
  t.equal(back.origin + back.pathname, CALLBACK)
  t.equal(back.searchParams.get('state'), 'st<a>te "&" ünïcode', 'state comes back verbatim')
  const code = back.searchParams.get('code') as string

  const reply = await exchange(ims, code, { code_verifier: verifier })
  t.equal(reply.status, 200)
  t.equal(reply.headers['content-type'], 'application/json;charset=utf-8')
  t.equal(reply.headers['cache-control'], 'no-store')
  t.match(reply.headers['x-debug-id'], /.+/)
  const tokens = reply.json as unknown as Tokens
  t.equal(tokens.token_type, 'bearer')
  t.equal(tokens.expires_in, 86399)
  t.type(tokens.refresh_token, 'string')

  const access = decodeJwt(tokens.access_token)
  t.match(access, { type: 'access_token', client_id: 'test-client', user_id: ADA, as: 'ims-na1' })
  t.equal(access['scope'], 'openid,AdobeID,lr_partner_apis,offline_access,email,profile')
  t.equal(Number(access['expires_in']), tokens.expires_in * 1000, 'the JWT says the same lifetime, in ms strings')
  t.type(access['created_at'], 'string')
  t.ok(Math.abs(Number(access['created_at']) - Date.now()) < 5000)
  t.match(decodeProtectedHeader(tokens.access_token), { alg: 'RS256', kid: 'ims_na1-key-at-1', x5u: 'ims_na1-key-at-1.cer' }, 'access tokens: a kid that /ims/keys does not publish, as IMS')
  t.equal((reply.json as { sub?: string }).sub, ADA, 'the code exchange carries a top-level sub, as IMS')

  const refreshJwt = decodeJwt(tokens.refresh_token as string)
  t.match(refreshJwt, { type: 'refresh_token', expires_in: String(14 * 24 * 3600 * 1000), user_id: ADA })

  const jwks = createLocalJWKSet((await send(`${ims.origin}/ims/keys`)).json as never)
  const { payload, protectedHeader } = await jwtVerify(tokens.id_token as string, jwks, { issuer: ims.origin, audience: 'test-client' })
  t.equal(protectedHeader.alg, 'RS256')
  t.match(protectedHeader, { kid: /^mock-ims-/, x5u: 'ims_na1-key-at-1.cer' }, 'the id_token: the published kid, and IMS\'s bare x5u file name')
  t.match(payload, { sub: ADA, name: 'Ada Lovelace', email: 'ada@example.com', given_name: 'Ada', family_name: 'Lovelace', nonce: 'n-0S6_WzA2Mj' })
  t.equal((payload.exp as number) - (payload.iat as number), 86399)

  t.match(ims.introspect(tokens.access_token), { active: true, sub: ADA, clientId: 'test-client', scope: 'openid AdobeID lr_partner_apis offline_access email profile' })
  t.same(ims.introspect('not-a-token'), { active: false })
  t.same(ims.activeRefreshTokens(ADA), [tokens.refresh_token])
  const secrets = ims.issuedSecrets()
  for (const secret of [code, tokens.access_token, tokens.refresh_token, tokens.id_token]) t.ok(secrets.includes(secret as string))
})

test('a token from one mock does not verify against another mock\'s JWKS', async (t) => {
  const one = await start(t)
  const other = await start(t)
  const tokens = await signIn(one)
  const jwks = createLocalJWKSet((await send(`${other.origin}/ims/keys`)).json as never)
  await t.rejects(jwtVerify(tokens.id_token as string, jwks))
})

test('PKCE plain, and an omitted method meaning plain', async (t) => {
  const ims = await start(t)
  const { verifier, challenge } = pkce()

  const plain = await codeFor(ims, { code_challenge: verifier, code_challenge_method: 'plain' })
  t.equal((await exchange(ims, plain, { code_verifier: verifier })).status, 200)

  const omitted = await codeFor(ims, { code_challenge: verifier })
  t.equal((await exchange(ims, omitted, { code_verifier: verifier })).status, 200, 'method omitted: the verifier is the challenge')

  const s256AsPlain = await codeFor(ims, { code_challenge: challenge })
  t.match((await exchange(ims, s256AsPlain, { code_verifier: verifier })).json, { error: 'invalid_grant' },
    'a client assuming S256 without saying so fails, as against IMS')
})

test('PKCE failures are invalid_grant', async (t) => {
  const ims = await start(t)
  const { verifier, challenge } = pkce()
  const cases: Array<[string, Record<string, string>]> = [
    ['missing verifier', {}],
    ['wrong verifier', { code_verifier: pkce().verifier }],
    ['malformed verifier', { code_verifier: 'short' }]
  ]
  for (const [name, extra] of cases) {
    const code = await codeFor(ims, { code_challenge: challenge, code_challenge_method: 'S256' })
    const reply = await exchange(ims, code, extra)
    t.equal(reply.status, 400, name)
    t.equal(reply.json['error'], 'invalid_grant', name)
  }
  const noChallenge = await codeFor(ims)
  t.match((await exchange(ims, noChallenge, { code_verifier: verifier })).json,
    { error: 'invalid_grant', error_description: /no code_challenge/ }, 'a verifier without a challenge smells of downgrade')
  t.equal((await exchange(ims, await codeFor(ims))).status, 200, 'no PKCE at all is fine for a confidential client')
})

test('codes are single-use, even when the first use failed', async (t) => {
  const ims = await start(t)
  const code = await codeFor(ims)
  const first = await exchange(ims, code)
  t.equal(first.status, 200)
  const replay = await exchange(ims, code)
  t.equal(replay.status, 400)
  t.match(replay.json, { error: 'invalid_grant', error_description: /already used/ })
  t.ok(ims.introspect((first.json as unknown as Tokens).access_token).active, 'by default the replay leaves the first tokens alone')

  const other = await codeFor(ims)
  t.equal((await exchange(ims, other, { redirect_uri: 'https://elsewhere.example/cb' })).status, 400)
  t.match((await exchange(ims, other)).json, { error: 'invalid_grant' }, 'the failed use spent it')
  t.match((await exchange(ims, 'never-issued')).json, { error: 'invalid_grant', error_description: /unknown/ })
})

test('revokeOnCodeReplay: a replay also kills what the first use got', async (t) => {
  const ims = await start(t, { revokeOnCodeReplay: true })
  const code = await codeFor(ims)
  const tokens = (await exchange(ims, code)).json as unknown as Tokens
  t.equal((await exchange(ims, code)).status, 400)
  t.notOk(ims.introspect(tokens.access_token).active)
  t.equal((await refresh(ims, tokens.refresh_token as string)).json['error'], 'invalid_grant')

  const failed = await codeFor(ims)
  t.equal((await exchange(ims, failed, { code_verifier: pkce().verifier })).status, 400)
  t.equal((await exchange(ims, failed)).status, 400, 'a replay of a code whose first use failed has nothing to revoke')
})

test('codes expire after codeLifetimeSeconds on the injected clock', async (t) => {
  const clock = fakeClock(Date.parse('2030-01-01T00:00:00Z'))
  const ims = await start(t, { now: clock.now, codeLifetimeSeconds: 60 })
  const fresh = await codeFor(ims)
  clock.advance(59_999)
  t.equal((await exchange(ims, fresh)).status, 200)
  const stale = await codeFor(ims)
  clock.advance(60_000)
  t.match((await exchange(ims, stale)).json, { error: 'invalid_grant', error_description: /expired/ })
})

test('codes are bound to their client and redirect_uri', async (t) => {
  const ims = await start(t, {
    clients: [
      { clientId: 'test-client', clientSecret: 'test-secret' },
      { clientId: 'other-client', clientSecret: 'other-secret', redirectUris: ['https://other.example/cb'] }
    ]
  })
  const forOther = await codeFor(ims)
  t.match((await tokenCall(ims, { grant_type: 'authorization_code', code: forOther, redirect_uri: CALLBACK }, basic('other-client', 'other-secret'))).json,
    { error: 'invalid_grant', error_description: /another client/ })

  const missing = await codeFor(ims)
  t.match((await tokenCall(ims, { grant_type: 'authorization_code', code: missing })).json,
    { error: 'invalid_grant', error_description: /redirect_uri is required/ })

  const mismatch = await codeFor(ims)
  t.match((await exchange(ims, mismatch, { redirect_uri: `${CALLBACK}?x=1` })).json,
    { error: 'invalid_grant', error_description: /does not match/ })

  // Without redirect_uri at authorize, IMS uses the registered one; then the token request may omit it.
  const implicit = await authorize(ims, { client_id: 'other-client', response_type: 'code', scope: 'openid' })
  t.equal(implicit.origin + implicit.pathname, 'https://other.example/cb')
  t.equal((await tokenCall(ims, { grant_type: 'authorization_code', code: implicit.searchParams.get('code') as string },
    basic('other-client', 'other-secret'))).status, 200)
})

test('client authentication: Basic, form fields or query parameters; anything wrong is 401 invalid_client', async (t) => {
  const ims = await start(t, { clients: [{ clientId: 'test-client', clientSecret: 'a:b+c d' }] })
  const basicSpecial = { authorization: `Basic ${Buffer.from('test-client:a%3Ab%2Bc+d').toString('base64')}` }
  t.equal((await exchange(ims, await codeFor(ims))).status, 401, 'the default secret is wrong here')
  t.equal((await tokenCall(ims, { grant_type: 'authorization_code', code: await codeFor(ims), redirect_uri: CALLBACK }, basicSpecial)).status,
    200, 'Basic: id and secret are form-encoded before base64 (RFC 6749 §2.3.1)')

  const viaForm = await tokenCall(ims, {
    grant_type: 'authorization_code', code: await codeFor(ims), redirect_uri: CALLBACK, client_id: 'test-client', client_secret: 'a:b+c d'
  }, {})
  t.equal(viaForm.status, 200, 'client_secret_post')

  const viaQuery = await tokenCall(ims, { grant_type: 'authorization_code', code: await codeFor(ims), redirect_uri: CALLBACK }, {},
    `?${new URLSearchParams({ client_id: 'test-client', client_secret: 'a:b+c d' })}`)
  t.equal(viaQuery.status, 200, 'query parameters, as in Adobe\'s samples')

  const agreeing = await tokenCall(ims, {
    grant_type: 'authorization_code', code: await codeFor(ims), redirect_uri: CALLBACK, client_id: 'test-client'
  }, basicSpecial)
  t.equal(agreeing.status, 200, 'client_id repeated in the form next to Basic is fine when it agrees')

  const failures: Array<[string, Record<string, string>, Record<string, string>, RegExp]> = [
    ['wrong secret', {}, basic('test-client', 'nope'), /invalid client/],
    ['unknown client', {}, basic('who', 'a:b+c d'), /invalid client/],
    ['no credentials', {}, {}, /required/],
    ['id without secret', { client_id: 'test-client' }, {}, /required/],
    ['malformed Basic', {}, { authorization: 'Basic bm9jb2xvbg==' }, /malformed/],
    ['bad percent-encoding in Basic', {}, { authorization: `Basic ${Buffer.from('test-client:%zz').toString('base64')}` }, /malformed/],
    ['conflicting ids', { client_id: 'someone-else' }, basicSpecial, /conflicting/]
  ]
  for (const [name, form, headers, description] of failures) {
    const reply = await tokenCall(ims, { grant_type: 'authorization_code', code: 'x', ...form }, headers)
    t.equal(reply.status, 401, name)
    t.match(reply.json, { error: 'invalid_client', error_description: description }, name)
    const challenge = reply.headers['www-authenticate']
    if ('authorization' in headers) t.equal(challenge, 'Basic realm="ims"', `${name}: Basic gets a Basic challenge`)
    else t.equal(challenge, undefined, name)
  }
})

test('token endpoint request errors', async (t) => {
  const ims = await start(t)
  const url = (await endpoints(ims))['token_endpoint'] as string
  const json = await send(url, { method: 'POST', headers: { 'content-type': 'application/json', ...basic() }, body: '{"grant_type":"refresh_token"}' })
  t.match(json.json, { error: 'invalid_request', error_description: /x-www-form-urlencoded/ })
  t.match((await tokenCall(ims, { code: 'x' })).json, { error: 'invalid_request', error_description: /grant_type is required/ })
  t.match((await tokenCall(ims, { grant_type: 'password' })).json, { error: 'unsupported_grant_type' })
  t.match((await tokenCall(ims, { grant_type: 'authorization_code' })).json, { error: 'invalid_request', error_description: /code is required/ })
  t.match((await tokenCall(ims, { grant_type: 'refresh_token' })).json, { error: 'invalid_request', error_description: /refresh_token is required/ })
  const repeated = await send(url, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic() }, body: 'grant_type=refresh_token&grant_type=password'
  })
  t.match(repeated.json, { error: 'invalid_request', error_description: 'grant_type is repeated' })
  const get = await send(url)
  t.equal(get.status, 405)
  t.equal(get.headers['allow'], 'POST')
})

test('refresh rotates: the old refresh token is invalid_grant afterwards', async (t) => {
  const ims = await start(t)
  const first = await signIn(ims)
  const reply = await refresh(ims, first.refresh_token as string)
  t.equal(reply.status, 200)
  const second = reply.json as unknown as Tokens
  t.type(second.refresh_token, 'string')
  t.not(second.refresh_token, first.refresh_token)
  t.notOk('id_token' in second, 'IMS sends no id_token on refresh')
  t.same(ims.activeRefreshTokens(ADA), [second.refresh_token])
  t.match((await refresh(ims, first.refresh_token as string)).json, { error: 'invalid_grant' })
  t.equal((await refresh(ims, second.refresh_token as string)).status, 200)
  t.match((await refresh(ims, first.access_token)).json, { error: 'invalid_grant' }, 'an access token is no refresh token')

  const [a, b] = await Promise.all([refresh(ims, ims.activeRefreshTokens(ADA)[0] as string), refresh(ims, ims.activeRefreshTokens(ADA)[0] as string)])
  t.same([a.status, b.status].sort(), [200, 400], 'two concurrent refreshes with one token: one loses')
})

test('rotateRefreshTokens false keeps the old refresh token valid', async (t) => {
  const ims = await start(t, { rotateRefreshTokens: false })
  const first = await signIn(ims)
  const second = (await refresh(ims, first.refresh_token as string)).json as unknown as Tokens
  t.equal((await refresh(ims, first.refresh_token as string)).status, 200)
  t.equal((await refresh(ims, second.refresh_token as string)).status, 200)
  t.equal(ims.activeRefreshTokens(ADA).length, 4)
})

test('omitRefreshTokenOnRefresh: no new refresh token, the old one stays valid', async (t) => {
  const ims = await start(t, { omitRefreshTokenOnRefresh: true })
  const first = await signIn(ims)
  const reply = (await refresh(ims, first.refresh_token as string)).json
  t.notOk('refresh_token' in reply)
  t.type(reply['access_token'], 'string')
  t.equal((await refresh(ims, first.refresh_token as string)).status, 200)
})

test('omitIdTokenOnRefresh false: refreshes carry an id_token when openid was granted', async (t) => {
  const ims = await start(t, { omitIdTokenOnRefresh: false })
  const first = await signIn(ims)
  t.type((await refresh(ims, first.refresh_token as string)).json['id_token'], 'string')
  const noOpenid = await signIn(ims, { scope: 'AdobeID,offline_access' })
  t.notOk('id_token' in noOpenid)
  t.notOk('id_token' in (await refresh(ims, noOpenid.refresh_token as string)).json)
})

test('a refresh may narrow scopes, never widen them', async (t) => {
  const ims = await start(t)
  const first = await signIn(ims)
  t.match((await refresh(ims, first.refresh_token as string, { scope: 'openid email' })).json, { error: 'invalid_scope' })
  t.match((await refresh(ims, first.refresh_token as string, { scope: ' , ' })).json, { error: 'invalid_scope' })
  const narrowed = (await refresh(ims, first.refresh_token as string, { scope: 'openid,AdobeID' })).json as unknown as Tokens
  t.equal(ims.introspect(narrowed.access_token).scope, 'openid AdobeID')
})

test('refresh tokens belong to their client and expire', async (t) => {
  const clock = fakeClock(Date.parse('2030-01-01T00:00:00Z'))
  const ims = await start(t, {
    now: clock.now,
    refreshTokenLifetimeSeconds: 3600,
    accessTokenLifetimeSeconds: 600,
    clients: [{ clientId: 'test-client', clientSecret: 'test-secret' }, { clientId: 'b', clientSecret: 'b-secret' }]
  })
  const tokens = await signIn(ims)
  const asB = await tokenCall(ims, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string }, basic('b', 'b-secret'))
  t.match(asB.json, { error: 'invalid_grant', error_description: /another client/ })
  const current = ims.activeRefreshTokens(ADA)[0] as string
  clock.advance(600_000)
  t.same(ims.introspect(tokens.access_token), { active: false }, 'access token expired')
  t.equal((await userinfo(ims, tokens.access_token)).status, 401)
  clock.advance(3_000_000)
  t.match((await refresh(ims, current)).json, { error: 'invalid_grant' })
  t.same(ims.activeRefreshTokens(ADA), [])
})

test('refreshTokenExpiry absolute: refreshed refresh tokens keep the first expiry', async (t) => {
  const clock = fakeClock(Date.parse('2030-01-01T00:00:00Z'))
  const ims = await start(t, { now: clock.now, refreshTokenLifetimeSeconds: 1000, refreshTokenExpiry: 'absolute' })
  let tokens = await signIn(ims)
  clock.advance(600_000)
  tokens = (await refresh(ims, tokens.refresh_token as string)).json as unknown as Tokens
  t.equal(decodeJwt(tokens.refresh_token as string)['expires_in'], '400000')
  clock.advance(400_000)
  t.match((await refresh(ims, tokens.refresh_token as string)).json, { error: 'invalid_grant' })
})

test('expiresInUnit milliseconds plays the legacy v1 endpoint', async (t) => {
  const ims = await start(t, { expiresInUnit: 'milliseconds', accessTokenLifetimeSeconds: 86399.985 })
  const tokens = await signIn(ims)
  t.equal(tokens.expires_in, 86399985)
  t.equal(decodeJwt(tokens.access_token)['expires_in'], '86399985')
  t.equal((await refresh(ims, tokens.refresh_token as string)).json['expires_in'], 86399985)
})

test('no offline_access, no refresh token; no openid, no id_token and no userinfo', async (t) => {
  const ims = await start(t)
  const online = await signIn(ims, { scope: 'openid,AdobeID,lr_partner_apis' })
  t.notOk('refresh_token' in online)
  t.type(online.id_token, 'string')
  t.same(ims.activeRefreshTokens(ADA), [])

  const bare = await signIn(ims, { scope: 'AdobeID lr_partner_apis' })
  t.notOk('id_token' in bare)
  const info = await userinfo(ims, bare.access_token)
  t.equal(info.status, 403)
  t.match(info.headers['www-authenticate'], /error="insufficient_scope"/)
})

test('userinfo: sub always, profile and email claims only with those scopes', async (t) => {
  const ims = await start(t, { users: [{ sub: 'SPARSE@AdobeID' }, { sub: 'FULL@AdobeID', name: 'Grace Hopper', email: 'grace@example.com', givenName: 'Grace', familyName: 'Hopper' }] })
  const lightroom = await signIn(ims, { login_hint: 'grace@example.com' })
  t.same((await userinfo(ims, lightroom.access_token)).json, { sub: 'FULL@AdobeID' })

  const full = await signIn(ims, { login_hint: 'FULL@AdobeID', scope: 'openid email profile' })
  const info = await userinfo(ims, full.access_token)
  t.equal(info.status, 200)
  t.same(info.json, { sub: 'FULL@AdobeID', name: 'Grace Hopper', given_name: 'Grace', family_name: 'Hopper', email: 'grace@example.com', email_verified: true })

  const sparse = await signIn(ims, { scope: 'openid email profile' })
  t.same((await userinfo(ims, sparse.access_token)).json, { sub: 'SPARSE@AdobeID' }, 'the first user signs in by default')
  t.same(decodeJwt(sparse.id_token as string)['sub'], 'SPARSE@AdobeID')
  t.notOk('name' in decodeJwt(sparse.id_token as string))

  const bad = await userinfo(ims, 'forged')
  t.equal(bad.status, 401)
  t.equal(bad.headers['www-authenticate'], 'Bearer realm="ims", error="invalid_token"')
  const none = await send(`${ims.origin}/ims/userinfo/v2`)
  t.equal(none.status, 401)
  t.equal(none.headers['www-authenticate'], 'Bearer realm="ims"')
  const post = await send(`${ims.origin}/ims/userinfo/v2`, { method: 'POST', headers: { authorization: `bearer ${full.access_token}` } })
  t.equal(post.status, 200, 'POST and a lower-case scheme work too')
})

test('signInAs and login_hint choose the user', async (t) => {
  const ims = await start(t, { users: [{ sub: 'ONE@AdobeID' }, { sub: 'TWO@AdobeID', email: 'two@example.com' }] })
  ims.signInAs('TWO@AdobeID')
  t.equal(ims.introspect((await signIn(ims)).access_token).sub, 'TWO@AdobeID')
  t.equal(ims.introspect((await signIn(ims, { login_hint: 'ONE@AdobeID' })).access_token).sub, 'ONE@AdobeID')
  t.equal(ims.introspect((await signIn(ims, { login_hint: 'nobody@example.com' })).access_token).sub, 'TWO@AdobeID', 'an unknown hint is ignored')
  t.throws(() => ims.signInAs('nobody'), /unknown user/)
  t.throws(() => ims.revokeConsent('nobody'), /unknown user/)
})

test('revoking a refresh token kills its grant\'s access tokens; an access token goes alone', async (t) => {
  const ims = await start(t, { clients: [{ clientId: 'test-client', clientSecret: 'test-secret' }, { clientId: 'b', clientSecret: 'b-secret' }] })
  const first = await signIn(ims)
  const second = (await refresh(ims, first.refresh_token as string)).json as unknown as Tokens
  const other = await signIn(ims)

  const reply = await revoke(ims, second.refresh_token as string)
  t.equal(reply.status, 200)
  t.equal(reply.text, '')
  for (const token of [first.access_token, second.access_token]) {
    t.notOk(ims.introspect(token).active)
    t.equal((await userinfo(ims, token)).status, 401)
  }
  t.match((await refresh(ims, second.refresh_token as string)).json, { error: 'invalid_grant' })
  t.ok(ims.introspect(other.access_token).active, 'another grant of the same user is untouched')

  t.equal((await revoke(ims, other.access_token)).status, 200)
  t.notOk(ims.introspect(other.access_token).active)
  t.equal((await refresh(ims, other.refresh_token as string)).status, 200, 'revoking an access token leaves the refresh token')

  t.equal((await revoke(ims, 'unknown-token')).status, 200, 'unknown tokens get the same 200 (RFC 7009)')
  const third = await signIn(ims)
  t.equal((await revoke(ims, third.refresh_token as string, basic('b', 'b-secret'))).status, 200)
  t.ok(ims.introspect(third.access_token).active, 'another client cannot revoke it')

  t.equal((await revoke(ims, third.refresh_token as string, basic('test-client', 'wrong'))).status, 401)
  const unauthenticated = await revoke(ims, third.refresh_token as string, {})
  t.equal(unauthenticated.status, 401)
  t.equal(unauthenticated.headers['www-authenticate'], undefined)
  const url = (await endpoints(ims))['revocation_endpoint'] as string
  const post = async (body: string, type = 'application/x-www-form-urlencoded'): Promise<Reply> =>
    await send(url, { method: 'POST', headers: { 'content-type': type, ...basic() }, body })
  t.match((await post('')).json, { error: 'invalid_request', error_description: /token is required/ })
  t.match((await post('token=a&token=b')).json, { error: 'invalid_request', error_description: /repeated/ })
  t.match((await post('{}', 'application/json')).json, { error: 'invalid_request' })
  const noAuth = await send(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic !!' }, body: 'token=a' })
  t.equal(noAuth.headers['www-authenticate'], 'Basic realm="ims"')
})

test('revokeConsent: refresh tokens fail with invalid_grant, access tokens stop working', async (t) => {
  const ims = await start(t, { users: [{ sub: ADA }, { sub: 'OTHER@AdobeID' }] })
  const tokens = await signIn(ims)
  const pending = await codeFor(ims)
  const others = await signIn(ims, { login_hint: 'OTHER@AdobeID' })
  ims.revokeConsent(ADA)
  t.match((await refresh(ims, tokens.refresh_token as string)).json, { error: 'invalid_grant' })
  t.equal((await userinfo(ims, tokens.access_token)).status, 401)
  t.same(ims.activeRefreshTokens(ADA), [])
  t.equal((await exchange(ims, pending)).status, 400, 'a code not yet exchanged dies too')
  t.equal((await refresh(ims, others.refresh_token as string)).status, 200, 'other users are untouched')
  t.equal((await signIn(ims)).token_type, 'bearer', 'signing in again makes a new grant')
})

test('consent page: Allow and Deny forms posting back with the original parameters', async (t) => {
  const ims = await start(t, { consent: true })
  const params = { client_id: 'test-client', redirect_uri: CALLBACK, response_type: 'code', scope: LR_SCOPES, state: 'a"b<c>' }
  const page = await send(`${ims.origin}/ims/authorize/v2?${new URLSearchParams(params)}`)
  t.equal(page.status, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.text, /<title>[^<]+<\/title>/)
  t.match(page.text, '<strong id="client-id">test-client</strong>')
  t.match(page.text, '<li>lr_partner_apis</li>')
  t.match(page.text, '<button type="submit">Allow</button>')
  t.match(page.text, '<button type="submit">Deny</button>')
  t.match(page.text, '<form method="post" action="/ims/authorize/v2">')
  t.match(page.text, '<input type="hidden" name="state" value="a&#34;b&#60;c&#62;">', 'values are escaped')

  // Submit the forms the way a browser would: every hidden field of the chosen form.
  const submit = async (decision: string): Promise<Reply> => await send(`${ims.origin}/ims/authorize/v2`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...params, decision }).toString()
  })
  const denied = await submit('deny')
  t.equal(denied.status, 302)
  const deniedUrl = new URL(denied.headers['location'] as string)
  t.equal(deniedUrl.searchParams.get('error'), 'access_denied')
  t.equal(deniedUrl.searchParams.get('state'), 'a"b<c>')
  t.notOk(deniedUrl.searchParams.has('code'))

  const allowed = new URL((await submit('allow')).headers['location'] as string)
  t.equal(allowed.searchParams.get('state'), 'a"b<c>')
  t.equal((await exchange(ims, allowed.searchParams.get('code') as string)).status, 200)

  t.equal((await submit('maybe')).status, 200, 'no decision yet: the page again')
  const silent = await authorize(ims, { ...params, prompt: 'none' })
  t.equal(silent.searchParams.get('error'), 'consent_required')

  const notAForm = await send(`${ims.origin}/ims/authorize/v2`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })
  t.equal(notAForm.status, 400)
})

test('authorize without consent accepts a POSTed request', async (t) => {
  const ims = await start(t)
  const reply = await send(`${ims.origin}/ims/authorize/v2`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'test-client', redirect_uri: CALLBACK, response_type: 'code', scope: 'openid', decision: 'deny' }).toString()
  })
  t.match(new URL(reply.headers['location'] as string).searchParams.get('code'), /.+/, 'decision means nothing without consent')
})

test('authorize: an unknown client or a bad redirect_uri gets a 400 page, never a redirect', async (t) => {
  const ims = await start(t, {
    clients: [
      { clientId: 'test-client', clientSecret: 'test-secret' },
      { clientId: 'strict', clientSecret: 's', redirectUris: ['https://app.example/cb'] }
    ]
  })
  const cases: Array<[string, Record<string, string>]> = [
    ['unknown client', { client_id: 'nobody', redirect_uri: CALLBACK }],
    ['no client', { redirect_uri: CALLBACK }],
    ['unregistered redirect_uri', { client_id: 'strict', redirect_uri: 'https://evil.example/cb' }],
    ['relative redirect_uri', { client_id: 'test-client', redirect_uri: '/cb' }],
    ['non-http redirect_uri', { client_id: 'test-client', redirect_uri: 'javascript:alert(1)' }],
    ['redirect_uri with a fragment', { client_id: 'test-client', redirect_uri: `${CALLBACK}#x` }],
    ['no redirect_uri and none registered', { client_id: 'test-client' }]
  ]
  for (const [name, params] of cases) {
    const reply = await send(`${ims.origin}/ims/authorize/v2?${new URLSearchParams({ response_type: 'code', scope: 'openid', ...params })}`)
    t.equal(reply.status, 400, name)
    t.equal(reply.headers['location'], undefined, name)
    t.match(reply.headers['content-type'], /^text\/html/, name)
  }
  const twice = await send(`${ims.origin}/ims/authorize/v2?client_id=test-client&redirect_uri=${encodeURIComponent(CALLBACK)}&redirect_uri=x`)
  t.equal(twice.status, 400)
})

test('authorize: other errors go back on the redirect with the state', async (t) => {
  const ims = await start(t, { requirePkce: true })
  const base = { client_id: 'test-client', redirect_uri: `${CALLBACK}?keep=1`, response_type: 'code', scope: 'openid', state: 'xyz', code_challenge: pkce().challenge }
  const cases: Array<[string, Record<string, string | undefined>, string, RegExp]> = [
    ['unknown scope', { scope: 'openid,lr_everything' }, 'invalid_scope', /lr_everything/],
    ['no scope', { scope: undefined }, 'invalid_scope', /required/],
    ['token response type', { response_type: 'token' }, 'unsupported_response_type', /code/],
    ['no response type', { response_type: undefined }, 'invalid_request', /response_type/],
    ['unknown PKCE method', { code_challenge_method: 'S512' }, 'invalid_request', /S512/],
    ['malformed challenge', { code_challenge: 'short' }, 'invalid_request', /43 to 128/],
    ['method without challenge', { code_challenge: undefined, code_challenge_method: 'S256' }, 'invalid_request', /without code_challenge/],
    ['requirePkce', { code_challenge: undefined }, 'invalid_request', /code_challenge is required/]
  ]
  for (const [name, change, error, description] of cases) {
    const params = Object.fromEntries(Object.entries({ ...base, ...change }).filter((entry): entry is [string, string] => entry[1] !== undefined))
    const back = await authorize(ims, params)
    t.equal(back.origin + back.pathname, CALLBACK, name)
    t.equal(back.searchParams.get('keep'), '1', `${name}: the redirect URI's own query is kept`)
    t.equal(back.searchParams.get('error'), error, name)
    t.match(back.searchParams.get('error_description'), description, name)
    t.equal(back.searchParams.get('state'), 'xyz', name)
    t.notOk(back.searchParams.has('code'), name)
  }

  const longState = await authorize(ims, { ...base, state: 'x'.repeat(4097) })
  t.equal(longState.searchParams.get('error'), 'invalid_request')
  t.notOk(longState.searchParams.has('state'), 'an invalid state is not echoed')
  const maxState = await authorize(ims, { ...base, state: 's'.repeat(4096) })
  t.equal(maxState.searchParams.get('state'), 's'.repeat(4096))
  t.ok(maxState.searchParams.has('code'))

  const repeated = await send(`${ims.origin}/ims/authorize/v2?${new URLSearchParams(base)}&scope=openid`)
  t.match(new URL(repeated.headers['location'] as string).searchParams.get('error_description'), /scope is repeated/)
  const noState = await authorize(ims, { ...base, state: '' })
  t.equal(noState.searchParams.get('state'), '', 'an empty state is echoed as sent')
})

test('logout redirects back to the app', async (t) => {
  const ims = await start(t, {
    clients: [{ clientId: 'test-client', clientSecret: 's' }, { clientId: 'strict', clientSecret: 's', redirectUris: ['https://app.example/cb'] }]
  })
  const logout = (params: Record<string, string>): Promise<Reply> => send(`${ims.origin}/ims/logout/v1?${new URLSearchParams(params)}`)
  const ok = await logout({ client_id: 'test-client', redirect_uri: 'https://app.example/bye', access_token: 'x' })
  t.equal(ok.status, 302)
  t.equal(ok.headers['location'], 'https://app.example/bye')
  t.equal((await logout({ client_id: 'strict', redirect_uri: 'https://app.example/home' })).headers['location'], 'https://app.example/home', 'same origin as a registered URI')
  t.equal((await logout({ client_id: 'strict', post_logout_redirect_uri: 'https://app.example/' })).status, 302)
  t.equal((await logout({ client_id: 'strict', redirect_uri: 'https://evil.example/' })).status, 400)
  t.equal((await logout({ client_id: 'test-client', redirect_uri: 'nope' })).status, 400)
  t.equal((await logout({ redirect_uri: 'https://app.example/' })).status, 400)
  const page = await logout({ client_id: 'test-client' })
  t.equal(page.status, 200)
  t.match(page.text, /signed out/)
})

test('options are validated up front', async (t) => {
  const bad: Array<[MockImsOptions, RegExp]> = [
    [{ clients: [] }, /clients/],
    [{ users: [] }, /users/],
    [{ clients: [{ clientId: '', clientSecret: 'x' }] }, /clientId/],
    [{ clients: [{ clientId: 'a', clientSecret: 'x' }, { clientId: 'a', clientSecret: 'y' }] }, /duplicate clientId/],
    [{ clients: [{ clientId: 'a', clientSecret: 'x', redirectUris: ['/cb'] }] }, /redirectUris/],
    [{ users: [{ sub: '' }] }, /sub/],
    [{ users: [{ sub: 'a' }, { sub: 'a' }] }, /duplicate sub/],
    [{ accessTokenLifetimeSeconds: 0 }, /accessTokenLifetimeSeconds/],
    [{ codeLifetimeSeconds: Number.NaN }, /codeLifetimeSeconds/]
  ]
  for (const [options, message] of bad) await t.rejects(createMockIms(options), message)
})

import t, { test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose'
import { Agent } from 'undici'
import { IdTokenVerifier } from '../lib/ims/id-token.js'
import { fakeClock } from './helpers/clock.js'

type Tap = Parameters<Parameters<typeof test>[0]>[0]

const ISSUER = 'https://ims.test'
const CLIENT = 'test-client'
const dispatcher = new Agent()
t.teardown(() => dispatcher.close())

const trusted = await generateKeyPair('RS256', { extractable: true })
const attacker = await generateKeyPair('RS256', { extractable: true })
const jwks = { keys: [{ ...(await exportJWK(trusted.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] }
let jwksCalls = 0
const server = createServer((_req, res) => {
  jwksCalls++
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks))
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
const jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/keys`

function verifier (): IdTokenVerifier {
  return new IdTokenVerifier({ jwksUri, issuers: [ISSUER], clientId: CLIENT, algorithms: ['RS256'], clockToleranceSeconds: 60, timeoutMs: 2000, dispatcher })
}

async function sign (claims: JWTPayload, options: { key?: CryptoKey, kid?: string, expiresIn?: string | number } = {}): Promise<string> {
  return await new SignJWT({ sub: 'user@AdobeID', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'k1' })
    .setIssuer(ISSUER)
    .setAudience(CLIENT)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .sign(options.key ?? trusted.privateKey)
}

test('a token signed by the provider with the right issuer and audience is accepted', async (t) => {
  const identity = await verifier().verify(await sign({ email: 'ada@example.com' }))
  t.equal(identity.sub, 'user@AdobeID')
  t.equal(identity.claims.email, 'ada@example.com')
})

test('forged, foreign or expired id_tokens are refused with LR_INVALID_ID_TOKEN', async (t) => {
  const v = verifier()
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<[string, Promise<string> | string]> = [
    ['signed with another key', sign({}, { key: attacker.privateKey })],
    ['for another client', new SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setAudience('other-client').setExpirationTime('1h').sign(trusted.privateKey)],
    ['from another issuer', new SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer('https://evil.example').setAudience(CLIENT).setExpirationTime('1h').sign(trusted.privateKey)],
    ['expired beyond the tolerance', sign({}, { expiresIn: now - 120 })],
    ['without sub', new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setAudience(CLIENT).setExpirationTime('1h').sign(trusted.privateKey)],
    ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'u', iss: ISSUER, aud: CLIENT, exp: now + 3600 })).toString('base64url')}.`],
    ['not a JWT', 'garbage']
  ]
  for (const [name, token] of cases) {
    await t.rejects(v.verify(await token), { code: 'LR_INVALID_ID_TOKEN', statusCode: 502 }, name)
  }
  t.ok(await v.verify(await sign({}, { expiresIn: now - 30 })), 'expired within the clock tolerance is accepted')
})

test('the JWKS is fetched once, and again only for an unknown kid after a pause', async (t) => {
  const before = jwksCalls
  const v = verifier()
  await v.verify(await sign({}))
  await v.verify(await sign({}))
  t.equal(jwksCalls - before, 1, 'cached')
  await t.rejects(v.verify(await sign({}, { kid: 'rotated' })), { code: 'LR_INVALID_ID_TOKEN' })
  t.equal(jwksCalls - before, 1, 'an unknown kid right after a fetch does not refetch (no amplification)')
})

test('an unknown kid after the refetch floor triggers exactly one refetch (provider key rotation)', async (t) => {
  const before = jwksCalls
  const v = verifier()
  await v.verify(await sign({}))
  const clock = fakeClock()
  t.capture(Date, 'now', clock.now)
  clock.advance(60_000)
  jwks.keys.push({ ...(await exportJWK(attacker.publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' })
  t.teardown(() => { jwks.keys.pop() })
  const identity = await v.verify(await sign({}, { key: attacker.privateKey, kid: 'k2', expiresIn: Math.floor(Date.now() / 1000) + 3600 }))
  t.equal(identity.sub, 'user@AdobeID')
  t.equal(jwksCalls - before, 2)
})

test('an unreachable JWKS is an LR_INVALID_ID_TOKEN error, not a crash', async (t) => {
  const v = new IdTokenVerifier({ jwksUri: 'http://127.0.0.1:1/keys', issuers: [ISSUER], clientId: CLIENT, algorithms: ['RS256'], clockToleranceSeconds: 60, timeoutMs: 500, dispatcher })
  await t.rejects(v.verify(await sign({})), { code: 'LR_INVALID_ID_TOKEN' })
})

test('the JWKS is fetched again once a day, so a withdrawn key stops being trusted', async (t) => {
  const v = verifier()
  await v.verify(await sign({}))
  const before = jwksCalls
  const clock = fakeClock()
  t.capture(Date, 'now', clock.now)
  clock.advance(25 * 3_600_000)
  const withdrawn = jwks.keys.splice(0, 1)
  t.teardown(() => { jwks.keys.unshift(...withdrawn) })
  await t.rejects(v.verify(await sign({}, { expiresIn: Math.floor(Date.now() / 1000) + 3600 })), { code: 'LR_INVALID_ID_TOKEN' })
  t.equal(jwksCalls - before, 1, 'refetched after a day, and the withdrawn key is gone')
})

/** A JWKS server whose answer to call n (1-based) the test decides; undefined never answers. */
async function flakyJwks (t: Tap, answer: (call: number) => number | undefined): Promise<{ uri: string, calls: () => number }> {
  let calls = 0
  const flaky = createServer((_req, res) => {
    const status = answer(++calls)
    if (status === undefined) return
    res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? JSON.stringify(jwks) : '{}')
  })
  await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => { flaky.closeAllConnections(); flaky.close(resolve) }))
  return { uri: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}/keys`, calls: () => calls }
}

function flakyVerifier (jwksUri: string, waits: number[], timeoutMs = 2000): IdTokenVerifier {
  return new IdTokenVerifier({ jwksUri, issuers: [ISSUER], clientId: CLIENT, algorithms: ['RS256'], clockToleranceSeconds: 60, timeoutMs, dispatcher, sleep: async (ms) => { waits.push(ms) } })
}

test('a JWKS blip (503) gets one quick second chance: the user is waiting on the callback', async (t) => {
  const { uri, calls } = await flakyJwks(t, (call) => call === 1 ? 503 : 200)
  const waits: number[] = []
  t.equal((await flakyVerifier(uri, waits).verify(await sign({}))).sub, 'user@AdobeID')
  t.equal(calls(), 2)
  t.equal(waits.length, 1)
  t.ok(waits[0]! >= 125 && waits[0]! <= 250, `a short wait (${waits[0]})`)
})

test('a JWKS that keeps failing: two calls, then LR_INVALID_ID_TOKEN naming the status', async (t) => {
  const { uri, calls } = await flakyJwks(t, () => 503)
  const waits: number[] = []
  await t.rejects(flakyVerifier(uri, waits).verify(await sign({})), { code: 'LR_INVALID_ID_TOKEN', message: /JWKS answered HTTP 503/ })
  t.equal(calls(), 2)
  const { uri: missing, calls: missingCalls } = await flakyJwks(t, () => 404)
  await t.rejects(flakyVerifier(missing, waits).verify(await sign({})), { message: /JWKS answered HTTP 404/ })
  t.equal(missingCalls(), 1, 'a 404 is not retried')
})

test('a JWKS slower than timeoutMs is tried twice, each attempt bounded, then fails as a timeout', async (t) => {
  const { uri, calls } = await flakyJwks(t, () => undefined)
  const started = Date.now()
  await t.rejects(flakyVerifier(uri, [], 200).verify(await sign({})), { code: 'LR_INVALID_ID_TOKEN', message: /timeout|timed out/i })
  t.equal(calls(), 2)
  t.ok(Date.now() - started < 3000, 'gave up quickly')
})

test('hygiene: azp with several audiences, the nonce of this sign-in, and no iat from the future', async (t) => {
  const v = verifier()
  const now = Math.floor(Date.now() / 1000)
  const signed = async (claims: JWTPayload, build?: (jwt: SignJWT) => SignJWT): Promise<string> => {
    const jwt = new SignJWT({ sub: 'user@AdobeID', ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setExpirationTime('1h')
    return await (build ?? ((j) => j.setAudience(CLIENT).setIssuedAt()))(jwt).sign(trusted.privateKey)
  }
  const refused: Array<[string, string, string | undefined]> = [
    ['several audiences and no azp', await signed({}, (j) => j.setAudience([CLIENT, 'other']).setIssuedAt()), undefined],
    ['several audiences, azp another client', await signed({ azp: 'other' }, (j) => j.setAudience([CLIENT, 'other']).setIssuedAt()), undefined],
    ['azp another client', await signed({ azp: 'other' }), undefined],
    ['no nonce when one was sent', await signed({}), 'n-1'],
    ['another sign-in\'s nonce', await signed({ nonce: 'n-2' }), 'n-1'],
    ['iat ten minutes ahead (tolerance 60 s)', await signed({}, (j) => j.setAudience(CLIENT).setIssuedAt(now + 600)), undefined],
    ['no iat', await signed({}, (j) => j.setAudience(CLIENT)), undefined]
  ]
  for (const [name, token, nonce] of refused) {
    await t.rejects(v.verify(token, { nonce }), { code: 'LR_INVALID_ID_TOKEN' }, name)
  }
  t.equal((await v.verify(await signed({ azp: CLIENT }, (j) => j.setAudience([CLIENT, 'other']).setIssuedAt()))).sub, 'user@AdobeID', 'several audiences with azp = us')
  t.equal((await v.verify(await signed({ nonce: 'n-1' }), { nonce: 'n-1' })).sub, 'user@AdobeID', 'the matching nonce')
  t.equal((await v.verify(await signed({}, (j) => j.setAudience(CLIENT).setIssuedAt(now + 30)))).sub, 'user@AdobeID', 'iat 30 s ahead is within the tolerance')
})

test('exactly the listed issuers are accepted (IMS: the bare host and {host}/ims), and x5u in the header is ignored', async (t) => {
  const v = new IdTokenVerifier({ jwksUri, issuers: [ISSUER, `${ISSUER}/ims`], clientId: CLIENT, algorithms: ['RS256'], clockToleranceSeconds: 60, timeoutMs: 2000, dispatcher })
  const withIssuer = async (iss: string): Promise<string> => await new SignJWT({ sub: 'u' })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1', x5u: 'ims_na1-key-at-1.cer' }).setIssuer(iss).setAudience(CLIENT).setIssuedAt().setExpirationTime('1h').sign(trusted.privateKey)
  const calls = jwksCalls
  for (const iss of [ISSUER, `${ISSUER}/ims`]) t.equal((await v.verify(await withIssuer(iss))).sub, 'u', `iss ${iss}`)
  for (const iss of [`${ISSUER}/ims/`, `${ISSUER}/imsx`, `${ISSUER}/other`, 'https://evil.example/ims', `${ISSUER}:8443`]) {
    await t.rejects(v.verify(await withIssuer(iss)), { code: 'LR_INVALID_ID_TOKEN' }, `iss ${iss} refused`)
  }
  t.ok(jwksCalls - calls <= 1, 'only the JWKS was fetched; x5u never')
})

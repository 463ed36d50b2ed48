import t, { test, type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import { discoverProvider, parseDiscoveryDocument } from '../lib/ims/discovery.js'
import { createMockIms } from '../lib/testing/index.js'

const dispatcher = new Agent()
t.teardown(() => dispatcher.close())
const noSleep = async (): Promise<void> => {}

async function serve (t: Test, handler: (url: string) => { status: number, type: string, body: string }): Promise<string> {
  const server: Server = createServer((req, res) => {
    const { status, type, body } = handler(req.url!)
    res.writeHead(status, { 'content-type': type }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

test('IMS: issuer is the bare host while the document lives under /ims; accepted', async (t) => {
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  const meta = await discoverProvider({ discoveryUrl: ims.discoveryUrl, issuer: undefined, timeoutMs: 2000, dispatcher })
  t.equal(meta.issuer, ims.origin)
  t.equal(meta.tokenEndpoint, `${ims.origin}/ims/token/v3`)
  t.equal(meta.revocationEndpoint, `${ims.origin}/ims/revoke`)
  t.same(meta.idTokenAlgorithms, ['RS256'])
})

test('transient discovery failures are retried, then a clear start-up error names discoveryUrl', async (t) => {
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  ims.fail('discovery', { status: 503 }, 2)
  const meta = await discoverProvider({ discoveryUrl: ims.discoveryUrl, issuer: undefined, timeoutMs: 2000, dispatcher, sleep: noSleep })
  t.equal(meta.issuer, ims.origin)
  t.equal(ims.count('discovery'), 3)
  ims.fail('discovery', { status: 500 }, 3)
  await t.rejects(discoverProvider({ discoveryUrl: ims.discoveryUrl, issuer: undefined, timeoutMs: 2000, dispatcher, sleep: noSleep }), /option "discoveryUrl" answered HTTP 500/)
  ims.fail('discovery', { reset: true }, 3)
  await t.rejects(discoverProvider({ discoveryUrl: ims.discoveryUrl, issuer: undefined, timeoutMs: 2000, dispatcher, sleep: noSleep }), /option "discoveryUrl" could not be fetched/)
  ims.fail('discovery', { delayMs: 1000 }, 1)
  await t.rejects(discoverProvider({ discoveryUrl: ims.discoveryUrl, issuer: undefined, timeoutMs: 200, dispatcher, sleep: noSleep, attempts: 1 }), /could not be fetched/)
})

test('discovery backs off from 250 ms with jitter, honours a capped Retry-After, and does not retry what cannot pass', async (t) => {
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  const waits: number[] = []
  const sleep = async (ms: number): Promise<void> => { waits.push(ms) }
  ims.fail('discovery', { status: 502 }, 2)
  await discoverProvider({ discoveryUrl: ims.discoveryUrl, issuer: undefined, timeoutMs: 2000, dispatcher, sleep })
  t.equal(waits.length, 2)
  t.ok(waits[0]! >= 125 && waits[0]! <= 250, `first wait ${waits[0]} in [125, 250]`)
  t.ok(waits[1]! >= 250 && waits[1]! <= 500, `second wait ${waits[1]} in [250, 500]`)

  waits.length = 0
  ims.fail('discovery', { status: 429, retryAfter: 1 })
  ims.fail('discovery', { status: 503, retryAfter: 120 })
  await discoverProvider({ discoveryUrl: ims.discoveryUrl, issuer: undefined, timeoutMs: 2000, dispatcher, sleep })
  t.same(waits, [1000, 2000], 'Retry-After in ms, capped at 2 s: a deploy should fail fast')

  waits.length = 0
  const before = ims.count('discovery')
  ims.fail('discovery', { status: 404 }, 3)
  await t.rejects(discoverProvider({ discoveryUrl: ims.discoveryUrl, issuer: undefined, timeoutMs: 2000, dispatcher, sleep }), /answered HTTP 404/)
  t.equal(ims.count('discovery') - before, 1, 'a 404 is final')
  await t.rejects(discoverProvider({ discoveryUrl: 'http://127.0.0.1:99999/.well-known/openid-configuration', issuer: undefined, timeoutMs: 2000, dispatcher, sleep }), /could not be fetched/)
  t.same(waits, [], 'nor is a URL that cannot be called')
  ims.clearFaults()
})

test('an HTML answer (the bare-host trap) explains the IMS discovery URL', async (t) => {
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  await t.rejects(discoverProvider({ discoveryUrl: `${ims.origin}/.well-known/openid-configuration`, issuer: undefined, timeoutMs: 2000, dispatcher, sleep: noSleep }), /HTTP 404|did not return JSON/)
  const origin = await serve(t, () => ({ status: 200, type: 'text/html', body: '<html>hi</html>' }))
  await t.rejects(discoverProvider({ discoveryUrl: `${origin}/x/.well-known/openid-configuration`, issuer: undefined, timeoutMs: 2000, dispatcher }), /did not return JSON.*\/ims\/\.well-known/)
})

test('document checks: issuer, endpoints, PKCE support', async (t) => {
  const url = 'https://op.example/realms/a/.well-known/openid-configuration'
  const good = { issuer: 'https://op.example/realms/a', authorization_endpoint: 'https://op.example/auth', token_endpoint: 'https://op.example/token', jwks_uri: 'https://op.example/certs' }
  const opts = { discoveryUrl: url, issuer: undefined, timeoutMs: 1, dispatcher }
  t.equal(parseDiscoveryDocument(good, opts).tokenEndpoint, 'https://op.example/token')
  t.throws(() => parseDiscoveryDocument({ ...good, issuer: 'https://evil.example' }, opts), /does not match the discovery URL/)
  t.throws(() => parseDiscoveryDocument({ ...good, issuer: 'https://op.example/realms/b' }, opts), /does not match/)
  t.equal(parseDiscoveryDocument({ ...good, issuer: 'https://evil.example' }, { ...opts, issuer: 'https://evil.example' }).issuer, 'https://evil.example', 'an explicitly trusted issuer is accepted')
  t.throws(() => parseDiscoveryDocument(good, { ...opts, issuer: 'https://other.example' }), /expected "https:\/\/other.example"/)
  t.throws(() => parseDiscoveryDocument({ ...good, token_endpoint: undefined }, opts), /without "token_endpoint"/)
  t.throws(() => parseDiscoveryDocument({ ...good, token_endpoint: 'http://op.example/token' }, opts), /"token_endpoint" is not https/)
  t.throws(() => parseDiscoveryDocument({ ...good, jwks_uri: 'not a url' }, opts), /"jwks_uri" is not a URL/)
  t.throws(() => parseDiscoveryDocument({ ...good, code_challenge_methods_supported: ['plain'] }, opts), /PKCE with S256/)
  t.throws(() => parseDiscoveryDocument([], opts), /not a JSON object/)
  t.throws(() => parseDiscoveryDocument({ ...good, issuer: '' }, opts), /without "issuer"/)
  t.same(parseDiscoveryDocument({ ...good, id_token_signing_alg_values_supported: ['none', 'ES256'] }, opts).idTokenAlgorithms, ['ES256'], '"none" is never accepted')
})

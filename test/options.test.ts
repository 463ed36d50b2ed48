import { test } from 'tap'
import Fastify from 'fastify'
import lrImsPlugin, { encryptedStore, memoryBackend, LightroomConfigError, type LightroomDecorator } from '../index.js'
import { resolveOptions } from '../lib/options.js'
import { createMockIms, testingHooks } from '../lib/testing/index.js'
import { KEY_A, harness, signIn } from './helpers/setup.js'
import { fakeClock } from './helpers/clock.js'

const base = { clientId: 'id', clientSecret: 'secret', redirectUri: 'https://app.example/auth/lightroom/callback' }

test('defaults follow the contract', async (t) => {
  const o = resolveOptions(base)
  t.equal(o.discoveryUrl, 'https://ims-na1.adobelogin.com/ims/.well-known/openid-configuration')
  t.same(o.scopes, ['openid', 'AdobeID', 'lr_partner_apis', 'lr_partner_rendition_apis', 'offline_access'])
  t.equal(o.routePrefix, '/auth/lightroom')
  t.equal(o.refreshMarginMs, 300_000)
  t.equal(o.secureCookies, true)
  t.equal(o.cookieSecretGenerated, true)
  t.equal(resolveOptions({ ...base, redirectUri: 'http://localhost:3000/auth/lightroom/callback' }).secureCookies, false)
  t.equal(resolveOptions({ ...base, routePrefix: 'auth/lr/' }).routePrefix, '/auth/lr')
  t.same(resolveOptions({ ...base, cookieSecret: ['x'.repeat(32), 'y'.repeat(40)] }).cookieSecrets, ['x'.repeat(32), 'y'.repeat(40)])
})

test('testing knobs are not options: at the top level they fail naming the option; under the symbol they are taken', async (t) => {
  for (const knob of ['now', 'imsRetry', 'refreshLock', 'lightroomRetry']) {
    t.throws(() => resolveOptions({ ...base, [knob]: {} }), { name: 'LightroomConfigError', option: knob }, knob)
  }
  t.doesNotThrow(() => resolveOptions({ ...base, [testingHooks]: { now: () => 0 } }))
  // Under the symbol, the clock is the plugin's: a sign-in is stamped with the fake time.
  const clock = fakeClock(Date.parse('2030-01-01T00:00:00Z'))
  const h = await harness({ ims: { now: clock.now }, plugin: { now: clock.now }, routes: (app) => app.get('/info', async (request) => await request.lightroomTokenInfo()) })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  t.equal(JSON.parse((await browser.get('/info')).body).receivedAt, clock.now())
})

test('each wrong option fails naming the option', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ ...base, clientId: undefined }, 'clientId'],
    [{ ...base, clientSecret: '' }, 'clientSecret'],
    [{ ...base, redirectUri: '/relative' }, 'redirectUri'],
    [{ ...base, redirectUri: 'ftp://x/y' }, 'redirectUri'],
    [{ ...base, redirectUri: 'https://u:p@x/y' }, 'redirectUri'],
    [{ ...base, redirectUri: 'https://x/y#frag' }, 'redirectUri'],
    [{ ...base, discoveryUrl: 'nope' }, 'discoveryUrl'],
    [{ ...base, scopes: [] }, 'scopes'],
    [{ ...base, scopes: ['openid', 'a b'] }, 'scopes'],
    [{ ...base, cookieSecret: 'short' }, 'cookieSecret'],
    [{ ...base, cookieSecret: ['x'.repeat(32), 'short'] }, 'cookieSecret[1]'],
    [{ ...base, cookieSecret: [] }, 'cookieSecret'],
    [{ ...base, store: memoryBackend() }, 'store'],
    [{ ...base, store: { get () {} } }, 'store'],
    [{ ...base, routePrefix: '/a b' }, 'routePrefix'],
    [{ ...base, refreshMarginSeconds: -1 }, 'refreshMarginSeconds'],
    [{ ...base, refreshMarginSeconds: '300' }, 'refreshMarginSeconds'],
    [{ ...base, allowedOrigins: 'https://x' }, 'allowedOrigins'],
    [{ ...base, allowedOrigins: ['nope'] }, 'allowedOrigins[0]'],
    [{ ...base, defaultReturnTo: '//evil' }, 'defaultReturnTo'],
    [{ ...base, clientSecert: 'typo' }, 'clientSecert']
  ]
  for (const [options, name] of cases) {
    let thrown: unknown
    try { resolveOptions(options) } catch (error) { thrown = error }
    t.ok(thrown instanceof LightroomConfigError, `${name}: a LightroomConfigError`)
    t.equal((thrown as LightroomConfigError).option, name)
    t.match((thrown as Error).message, `option "${name}"`)
  }
  t.throws(() => resolveOptions(null), /options/)
})

test('registration fails at start-up for an unencrypted store, naming the option', async (t) => {
  const app = Fastify()
  app.register(lrImsPlugin, { ...base, store: memoryBackend() as never })
  await t.rejects(async () => { await app.ready() }, /option "store" must be created with encryptedStore/)
  await app.close()
})

test('without store and cookieSecret the plugin works in memory and warns once for each', async (t) => {
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  await app.register(lrImsPlugin, { clientId: 'test-client', clientSecret: 'test-secret', redirectUri: 'http://localhost/auth/lightroom/callback', discoveryUrl: ims.discoveryUrl })
  await app.ready()
  t.equal(lines.filter((l) => l.includes('vanish on restart')).length, 1)
  t.equal(lines.filter((l) => l.includes('no \\"cookieSecret\\" option')).length, 1)
  const login = await app.inject('/auth/lightroom/login')
  t.equal(login.statusCode, 302)
  t.match(login.headers['set-cookie'], /lr_oauth_state=/)
  t.notMatch(login.headers['set-cookie'], /__Host-|Secure/, 'plain http app: no Secure, no __Host- prefix')
  await app.close()
})

test('a redirectUri that does not point at the callback route fails at start-up, unless a proxy rewrites it', async (t) => {
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  const options = { ...base, clientId: 'test-client', clientSecret: 'test-secret', redirectUri: 'https://app.example/oauth/cb', discoveryUrl: ims.discoveryUrl, cookieSecret: 'z'.repeat(32), store: encryptedStore(memoryBackend(), { keys: [KEY_A] }) }
  const app = Fastify()
  await t.rejects(async () => { await app.register(lrImsPlugin, options).ready() }, {
    name: 'LightroomConfigError',
    option: 'redirectUri',
    message: /ends in \/oauth\/cb, but the callback route is \/auth\/lightroom\/callback.*redirectUriRewritten: true/
  })
  await app.close()
  const behindProxy = Fastify()
  await behindProxy.register(lrImsPlugin, { ...options, redirectUriRewritten: true })
  await behindProxy.ready()
  t.equal(behindProxy.lightroom.loginUrl(), '/auth/lightroom/login', 'with the option it registers')
  await behindProxy.close()
  t.throws(() => resolveOptions({ ...base, redirectUriRewritten: 'yes' }), { name: 'LightroomConfigError', option: 'redirectUriRewritten' }, 'a flag is a boolean')
})

test('newcomer mistakes get errors that say what to do', async (t) => {
  t.throws(() => resolveOptions({ ...base, discoveryUrl: 'https://ims-na1.adobelogin.com/.well-known/openid-configuration' }), {
    option: 'discoveryUrl', message: /without "\/ims": use https:\/\/ims-na1\.adobelogin\.com\/ims\/\.well-known\/openid-configuration/
  }, 'an IMS discovery URL without /ims names the right one')
  t.throws(() => resolveOptions({ ...base, discoveryUrl: 'https://ims-na1-stg1.adobelogin.com/' }), { message: /use https:\/\/ims-na1-stg1\.adobelogin\.com\/ims\// }, 'stage too')
  t.throws(() => encryptedStore(memoryBackend(), { keys: 'k1:' + 'A'.repeat(43) as never }), { option: 'keys', message: /parseEncryptionKeys\(\)/ }, 'keys as the env var text point to parseEncryptionKeys')
  t.throws(() => encryptedStore(memoryBackend(), { keys: ['k1:' + 'A'.repeat(43)] as never }), { option: 'keys[0]', message: /parseEncryptionKeys\(\)/ })

  const ims = await createMockIms()
  t.teardown(() => ims.close())
  const app = Fastify()
  const options = { ...base, clientId: 'test-client', clientSecret: 'test-secret', discoveryUrl: ims.discoveryUrl, cookieSecret: 'z'.repeat(32), store: encryptedStore(memoryBackend(), { keys: [KEY_A] }) }
  await app.register(lrImsPlugin, options)
  await t.rejects(async () => { await app.register(lrImsPlugin, options).ready() }, { name: 'LightroomConfigError', message: /registered twice on the same Fastify instance/ }, 'registered twice: said so, not a duplicate-route error')
  await app.close()
})

test('under a Fastify prefix, every URL the plugin hands out carries it; a prefix option is refused', async (t) => {
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  const app = Fastify()
  let lightroom: LightroomDecorator | undefined
  const settings = { clientId: 'test-client', clientSecret: 'test-secret', redirectUri: 'https://app.example/api/auth/lightroom/callback', discoveryUrl: ims.discoveryUrl, cookieSecret: 'z'.repeat(32), store: encryptedStore(memoryBackend(), { keys: [KEY_A] }) }
  await app.register(async (api) => {
    await api.register(lrImsPlugin, settings)
    api.get('/photos', { preHandler: api.lightroom.requireLogin }, async () => 'ok')
    lightroom = api.lightroom
  }, { prefix: '/api' })
  await app.ready()
  t.equal(lightroom!.loginUrl('/x'), '/api/auth/lightroom/login?returnTo=%2Fx')
  t.equal(lightroom!.logoutUrl(), '/api/auth/lightroom/logout')
  t.equal((await app.inject('/api/auth/lightroom/login')).statusCode, 302, 'the routes live under the prefix')
  const api = await app.inject({ url: '/api/photos', headers: { accept: 'application/json' } })
  t.equal(api.json().loginUrl, '/api/auth/lightroom/login?returnTo=%2Fapi%2Fphotos')
  await app.close()

  const wrong = Fastify()
  wrong.register(lrImsPlugin, { ...settings, prefix: '/api' } as never)
  await t.rejects(async () => { await wrong.ready() }, /option "prefix" is ignored by Fastify for this plugin: use "routePrefix"/)
  await wrong.close()
})

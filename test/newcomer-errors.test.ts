import { test } from 'tap'
import Fastify from 'fastify'
import lrImsPlugin, { encryptedStore, memoryBackend } from '../index.js'
import { createMockIms } from '../lib/testing/index.js'
import { KEY_A, harness, rawRecords } from './helpers/setup.js'

test('a sign-in that comes back to another host than it started on gets a page that says so', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  // The sign-in starts in one browser "site" (its cookies stay there)...
  const started = h.browser()
  const toIms = await started.follow('/auth/lightroom/login', { stopAt: (location) => location.pathname.endsWith('/callback') })
  const callback = new URL(toIms.location!, toIms.url)
  // ...and IMS sends the browser back to the redirect URI's host, where no flow cookie exists.
  const elsewhere = h.browser()
  const page = await elsewhere.get(`${callback.pathname}${callback.search}`, { accept: 'text/html' })
  t.equal(page.status, 400)
  t.match(page.body, /did not come back to app\.test/)
  t.match(page.body, /127\.0\.0\.1 and localhost are different sites/)
  t.match(page.body, /start again at https:\/\/app\.test\/auth\/lightroom\/login/)
  t.match(page.body, /LR_BAD_STATE/)
  const json = await h.browser().get(`${callback.pathname}${callback.search}`, { accept: 'application/json' })
  t.match(JSON.parse(json.body), { statusCode: 400, code: 'LR_BAD_STATE', message: /did not come back/ }, 'API callers get the same explanation')
})

test('two registrations at the same routes, in sibling plugins, are told which option separates them', async (t) => {
  const ims = await createMockIms()
  t.teardown(() => ims.close())
  const options = { clientId: 'test-client', clientSecret: 'test-secret', redirectUri: 'https://app.example/auth/lightroom/callback', discoveryUrl: ims.discoveryUrl, cookieSecret: 'z'.repeat(32), store: encryptedStore(memoryBackend(), { keys: [KEY_A] }) }
  const app = Fastify()
  await app.register(async (one) => { await one.register(lrImsPlugin, options) })
  await t.rejects(async () => {
    await app.register(async (two) => { await two.register(lrImsPlugin, options) })
    await app.ready()
  }, { name: 'LightroomConfigError', message: /another registration of this plugin already has them; give each registration its own routePrefix/ })
  await app.close()
  const apart = Fastify()
  await apart.register(async (one) => { await one.register(lrImsPlugin, options) })
  await apart.register(async (two) => { await two.register(lrImsPlugin, { ...options, routePrefix: '/auth/other', redirectUri: 'https://app.example/auth/other/callback' }) })
  await apart.ready()
  t.pass('with a routePrefix each, both register')
  await apart.close()
})

test('HEAD to the login or callback route starts nothing and spends nothing; an encoded query is redacted too', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const before = await rawRecords(h.backend)
  for (const url of ['/auth/lightroom/login', '/auth/lightroom/callback?code=HEADCODE&state=x']) {
    const res = await h.app.inject({ method: 'HEAD', url })
    t.equal(res.statusCode, 404, `HEAD ${url.split('?')[0]} is not a route`)
  }
  t.equal((await rawRecords(h.backend)).size, before.size, 'no flow record written by a HEAD')
  await h.app.inject({ url: '/auth/lightroom/callback%3Fcode=ENCODEDCODE123&state=y' })
  t.notMatch(h.logs.join('\n'), /ENCODEDCODE123|HEADCODE/, 'neither code reaches a log line')
})

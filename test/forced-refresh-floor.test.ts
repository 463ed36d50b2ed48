import { test } from 'tap'
import { createMockIms, createMockLightroom } from '../lib/testing/index.js'
import { fakeClock } from './helpers/clock.js'
import { harness, signIn } from './helpers/setup.js'

test('a Lightroom that keeps refusing fresh tokens costs one forced refresh per user per 30 s, not one per request', async (t) => {
  const clock = fakeClock()
  const ims = await createMockIms({ now: clock.now })
  const lightroom = await createMockLightroom({ ims })
  t.teardown(async () => { await lightroom.close(); await ims.close() })
  const h = await harness({
    sharedIms: ims,
    plugin: { now: clock.now, lightroomBaseUrl: lightroom.origin },
    routes: (app) => app.get('/me', async (request) => ({ email: (await request.lightroomApi().account()).email }))
  })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  lightroom.fail('account', { status: 401, body: 'while (1) {}\n{"error_code":"401013","message":"Oauth token is not valid"}' }, 1000)
  const before = ims.count('token:refresh_token')
  for (let i = 0; i < 20; i++) t.equal((await browser.get('/me')).status, 401, `request ${i + 1}: Lightroom's 401 passed through`)
  t.equal(ims.count('token:refresh_token') - before, 1, 'one forced refresh for twenty refused requests')
  clock.advance(31_000)
  await browser.get('/me')
  t.equal(ims.count('token:refresh_token') - before, 2, 'and one more once the floor has passed')
  lightroom.clearFaults()
  t.equal((await browser.get('/me')).status, 200, 'works again when Lightroom does')
})

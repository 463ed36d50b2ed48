import { test } from 'tap'
import { signedInWithLightroom } from './helpers/lightroom-harness.js'

test('a Lightroom that keeps refusing fresh tokens costs one forced refresh per user per 30 s, not one per request', async (t) => {
  const { ims, lightroom, clock, browser } = await signedInWithLightroom(t)
  lightroom.fail('account', { status: 401, body: 'while (1) {}\n{"error_code":"401013","message":"Oauth token is not valid"}' }, 1000)
  const before = ims.count('token:refresh_token')
  for (let i = 0; i < 20; i++) t.equal((await browser.get('/account')).status, 401, `request ${i + 1}: Lightroom's 401 passed through`)
  t.equal(ims.count('token:refresh_token') - before, 1, 'one forced refresh for twenty refused requests')
  clock.advance(31_000)
  await browser.get('/account')
  t.equal(ims.count('token:refresh_token') - before, 2, 'and one more once the floor has passed')
  lightroom.clearFaults()
  t.equal((await browser.get('/account')).status, 200, 'works again when Lightroom does')
})

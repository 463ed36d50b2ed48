// The fleet's IMS cooldown record is written on the failing instance's clock: one running ahead
// must not hold refreshes back here for longer than one cooldown.
import { test } from 'tap'
import { tokenKey } from '../lib/auth/token-manager.js'
import type { TokenSet } from '../lib/auth/token-set.js'
import { IMS_HEALTH_KEY } from '../lib/auth/ims-health.js'
import { fakeClock } from './helpers/clock.js'
import { harness, signIn } from './helpers/setup.js'

const MINUTE = 60_000

test('an IMS failure recorded by a peer whose clock is 10 minutes ahead holds refreshes back here for one cooldown, not 10 minutes', async (t) => {
  const clock = fakeClock()
  const h = await harness({ ims: { now: clock.now }, plugin: { now: clock.now } })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  const sub = h.ims.users[0]!.sub
  const stored = (await h.store.get<TokenSet>(tokenKey(sub)))!.value
  clock.advance(stored.accessExpiresAt - clock.now() + MINUTE) // expired
  // What ImsHealth.failed() on a peer with a clock 10 min ahead writes (cooldown 5 s).
  await h.store.set(IMS_HEALTH_KEY, { until: clock.now() + 10 * MINUTE + 5000 }, 60_000)
  t.equal((await browser.get('/token')).status, 503, 'first request: cooling down (expected)')
  // The record is gone from the store (its TTL passed, or a probe succeeded elsewhere) and well past one cooldown.
  await h.store.delete(IMS_HEALTH_KEY)
  clock.advance(30_000)
  const later = await browser.get('/token')
  t.equal(later.status, 200, `30 s later (6 cooldowns), with no ims-health record left, the refresh should run (got ${later.status})`)
  t.equal(h.ims.count('token:refresh_token'), 1)
})

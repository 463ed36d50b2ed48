import type { Test } from 'tap'
import { createMockIms, createMockLightroom, type MockIms, type MockLightroom } from '../../lib/testing/index.js'
import { fakeClock, type FakeClock } from './clock.js'
import { harness, signIn, type Harness } from './setup.js'
import type { Browser } from './browser.js'

/**
 * A signed-in user of an app that talks to a mock Lightroom, on a fake clock shared by the mock IMS
 * and the plugin; `GET /account` answers the user's Lightroom email. Everything closes at teardown.
 */
export async function signedInWithLightroom (t: Test): Promise<{ h: Harness, ims: MockIms, lightroom: MockLightroom, clock: FakeClock, browser: Browser }> {
  const clock = fakeClock()
  const ims = await createMockIms({ now: clock.now })
  const lightroom = await createMockLightroom({ ims })
  t.teardown(async () => { await lightroom.close(); await ims.close() })
  const h = await harness({
    sharedIms: ims,
    plugin: { now: clock.now, lightroomBaseUrl: lightroom.origin },
    routes: (app) => app.get('/account', async (request) => ({ email: (await request.lightroomApi().account()).email }))
  })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  return { h, ims, lightroom, clock, browser }
}

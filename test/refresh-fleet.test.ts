import { test, type Test } from 'tap'
import { memoryBackend, type StoreBackend } from '../index.js'
import { IMS_HEALTH_KEY } from '../lib/auth/ims-health.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import type { TokenSet } from '../lib/auth/token-set.js'
import type { Browser } from './helpers/browser.js'
import { fakeClock, type FakeClock } from './helpers/clock.js'
import { harness, signIn, type Harness } from './helpers/setup.js'

const MINUTE = 60_000

/** One app on a fake clock with one user signed in, and that user's stored set. */
async function signedIn (t: Test): Promise<{ clock: FakeClock, h: Harness, browser: Browser, sub: string, stored: TokenSet }> {
  const clock = fakeClock()
  const h = await harness({ ims: { now: clock.now }, plugin: { now: clock.now } })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  const sub = h.ims.users[0]!.sub
  const stored = (await h.store.get<TokenSet>(tokenKey(sub)))!.value
  return { clock, h, browser, sub, stored }
}

test('while a peer holds the refresh lock (dead mid-refresh), requests whose token still works answer at once with it', async (t) => {
  const { clock, h, browser, sub, stored } = await signedIn(t)
  // Inside the 5-minute refresh margin, with 2 minutes left: due for a refresh, still valid.
  clock.advance(stored.accessExpiresAt - clock.now() - 2 * MINUTE)
  // A peer took the user's lock and died: it stays held for the lock's whole life.
  const peer = await h.store.tryLock(`refresh:${sub}`, 15_000)
  t.ok(peer, 'the peer holds the lock')
  const started = performance.now()
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await browser.get('/token')))
  const elapsed = performance.now() - started
  t.ok(elapsed < 1000, `20 requests answered in ${elapsed.toFixed(0)} ms, not after the peer's lock`)
  t.ok(answers.every((answer) => answer.status === 200 && JSON.parse(answer.body).token === stored.accessToken), 'each with the still-valid token')
  t.equal(h.ims.count('token:refresh_token'), 0, 'and nobody refreshed behind the peer\'s back')

  // Once the token has really expired, a request waits for the peer's result (here: its lock to go).
  await peer!.release()
  clock.advance(3 * MINUTE)
  const after = await browser.get('/token')
  t.equal(after.status, 200)
  t.not(JSON.parse(after.body).token, stored.accessToken, 'an expired token is refreshed')
  t.equal(h.ims.count('token:refresh_token'), 1)
})

test('a refreshed set that loses every write on the same grant is kept, and the rotated-away refresh token is never spent again', async (t) => {
  const clock = fakeClock()
  const inner = memoryBackend()
  let losing = false
  let markWritten = false
  // Once the refresh has marked the record (its first write), every write of the token record loses
  // its compare-and-set, as if the record were re-encrypted under it each time.
  const backend: StoreBackend = {
    ...inner,
    compareAndSet: async (key, revision, value, ttlMs) => {
      if (losing && key.startsWith('tokens:')) {
        if (markWritten) return false
        markWritten = true
      }
      return await inner.compareAndSet(key, revision, value, ttlMs)
    }
  }
  if (inner.getSync !== undefined) backend.getSync = inner.getSync.bind(inner)
  const h = await harness({ backend, ims: { now: clock.now }, plugin: { now: clock.now } })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  const before = JSON.parse((await browser.get('/token')).body).token
  clock.advance(25 * 60 * MINUTE)
  losing = true
  const answer = await browser.get('/token')
  t.equal(answer.status, 200, 'the user is served')
  t.not(JSON.parse(answer.body).token, before, 'with the new token')
  t.equal(h.ims.count('token:refresh_token'), 1, 'one refresh')
  t.equal(h.ims.count('token:refresh_token:error'), 0, 'no refresh with the rotated-away token')
  t.ok(h.logs.some((line) => line.includes('lost four writes in a row')), 'said in the log')
})

// The fleet's IMS cooldown record is written on the failing instance's clock: one running ahead
// must not hold refreshes back here for longer than one cooldown.
test('an IMS failure recorded by a peer whose clock is 10 minutes ahead holds refreshes back here for one cooldown, not 10 minutes', async (t) => {
  const { clock, h, browser, stored } = await signedIn(t)
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

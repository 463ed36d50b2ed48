// IMS has rotated the grant the moment a refresh answers: the new set is never dropped while the
// store may still hold the grant it replaces, whatever the write after the refresh meets (a record
// re-encrypted under a key this instance lacks, a store error on the re-read).
import { test } from 'tap'
import { encryptedStore, memoryBackend, type StoreBackend } from '../index.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import type { TokenSet } from '../lib/auth/token-set.js'
import { fakeClock } from './helpers/clock.js'
import { harness, signIn, KEY_A, KEY_B } from './helpers/setup.js'

test('a lost write of refreshed tokens over a record under a newer key keeps the new tokens', async (t) => {
  const clock = fakeClock()
  const inner = memoryBackend()
  // Instance B of the rolling rotation: encrypts with B, still reads A.
  const newer = encryptedStore(inner, { keys: [KEY_B, KEY_A] })
  let tokenCas = 0
  let armed = false
  const backend: StoreBackend = {
    ...inner,
    compareAndSet: async (key, revision, value, ttlMs) => {
      if (armed && key.startsWith('tokens:') && ++tokenCas === 2) {
        // Between this instance's mark (CAS 1) and its write of the refreshed set (CAS 2),
        // instance B runs reencryptAll with its new key.
        await newer.reencryptAll('tokens:')
      }
      return await inner.compareAndSet(key, revision, value, ttlMs)
    }
  }
  const h = await harness({ backend, ims: { now: clock.now }, plugin: { now: clock.now } })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  const sub = h.ims.users[0]!.sub
  clock.advance(25 * 3600_000)
  armed = true
  const answer = await browser.get('/token')
  t.equal(h.ims.count('token:refresh_token'), 1, 'IMS refreshed (and rotated) once')
  t.equal(answer.status, 200, `the refreshed token is served (got ${answer.status} ${answer.body})`)
  // The kept set is written at this instance's next read (or its next retry).
  t.equal((await browser.get('/token')).status, 200)
  const left = (await newer.get<TokenSet>(tokenKey(sub)))!.value
  t.ok(h.ims.activeRefreshTokens(sub).includes(left.refreshToken!), 'the stored record holds a refresh token that still works')
})

test('a store error on the re-read after a lost write of refreshed tokens keeps the new tokens (kept unsaved)', async (t) => {
  const clock = fakeClock()
  const inner = memoryBackend()
  const same = encryptedStore(inner, { keys: [KEY_A] })
  let tokenCas = 0
  let armed = false
  let failNextGet = false
  const backend: StoreBackend = {
    ...inner,
    get: async (key) => {
      if (failNextGet && key.startsWith('tokens:')) { failNextGet = false; throw new Error('ECONNRESET') }
      return await inner.get(key)
    },
    compareAndSet: async (key, revision, value, ttlMs) => {
      if (armed && key.startsWith('tokens:') && ++tokenCas === 2) {
        // Any rewrite of the marked record with the same content (another instance's re-encryption, say).
        const current = (await same.get<unknown>(key))!
        await same.compareAndSet(key, current.revision, current.value, 3600_000)
        const result = await inner.compareAndSet(key, revision, value, ttlMs)
        // And the store blips right after.
        failNextGet = true
        return result
      }
      return await inner.compareAndSet(key, revision, value, ttlMs)
    }
  }
  const h = await harness({ backend, ims: { now: clock.now }, plugin: { now: clock.now } })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  clock.advance(25 * 3600_000)
  armed = true
  const first = await browser.get('/token')
  t.equal(h.ims.count('token:refresh_token'), 1, 'IMS refreshed (and rotated) once')
  t.equal(first.status, 200, `served the refreshed token (got ${first.status})`)
  const second = await browser.get('/token')
  t.equal(second.status, 200, `next request still signed in (got ${second.status} ${second.body})`)
  t.equal(h.ims.count('token:refresh_token:error'), 0, 'the rotated-away token was never spent again')
})

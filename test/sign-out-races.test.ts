// A sign-out races writes of the same record (another device's refresh marking it, a re-encryption):
// it goes again while it loses, and when it cannot win it says so (503) rather than report a
// sign-out that did not happen.
import { test, type Test } from 'tap'
import { encryptedStore, memoryBackend, type StoreBackend } from '../index.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import { LOGOUT, signInUser } from './helpers/flows.js'
import { APP_ORIGIN, harness, KEY_A, type Harness } from './helpers/setup.js'

const SUB = 'OUT00000000000000000000A@AdobeID'

async function racingWorld (t: Test, rewritesBeforeWin: number): Promise<Harness> {
  const inner = memoryBackend()
  const same = encryptedStore(inner, { keys: [KEY_A] })
  let rewrites = 0
  const backend: StoreBackend = {
    ...inner,
    compareAndDelete: async (key, expected) => {
      if (key === tokenKey(SUB) && rewrites < rewritesBeforeWin) {
        rewrites++
        // Another instance rewrote the record meanwhile (a refresh's mark, a re-encryption...).
        const current = (await same.get<unknown>(key))!
        await same.compareAndSet(key, current.revision, current.value, 3600_000)
      }
      return await inner.compareAndDelete(key, expected)
    }
  }
  const h = await harness({
    backend,
    ims: { users: [{ sub: SUB }] },
    routes: (app) => { app.get('/whoami', async (request) => ({ user: (await request.lightroomUserId()) ?? null })) }
  })
  t.teardown(h.close)
  return h
}

test('a sign-out that loses a few races to other writes goes again until every session has ended', async (t) => {
  const h = await racingWorld(t, 3)
  const laptop = await signInUser(h, SUB)
  const phone = await signInUser(h, SUB)
  const out = await h.app.inject({ method: 'POST', url: LOGOUT, headers: { cookie: laptop.cookie, origin: APP_ORIGIN } })
  t.equal(out.statusCode, 303)
  t.equal((await h.app.inject({ url: '/whoami', headers: { cookie: phone.cookie } })).json().user, null, 'the other device is signed out too')
  t.equal(await h.backend.get(tokenKey(SUB)), undefined, 'the record is gone')
})

test('a sign-out that cannot win its race answers 503 and reports nothing done', async (t) => {
  const h = await racingWorld(t, Infinity)
  const events: string[] = []
  h.app.lightroom.events.on('logout', ({ reason }) => events.push(reason))
  const laptop = await signInUser(h, SUB)
  const out = await h.app.inject({ method: 'POST', url: LOGOUT, headers: { cookie: laptop.cookie, origin: APP_ORIGIN, accept: 'application/json' } })
  t.equal(out.statusCode, 503)
  t.equal(out.json().code, 'LR_STORE_UNAVAILABLE')
  t.same(events, [], 'no logout event for a sign-out that did not happen')
  t.notOk(h.logs.some((line) => line.includes('user signed out')), 'nor a log line saying it did')
})

/**
 * The request path that reads the session and the user's tokens in one store round trip: the
 * token record read that way gets every check of a separate read (a corrupt record signs the user
 * out, a refreshed set the store could not take is written first), and one request costs one
 * round trip however many of its calls ask who is signed in.
 */
import { test } from 'tap'
import { memoryBackend, type StoreBackend } from '../index.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import type { TokenSet } from '../lib/auth/token-set.js'
import { fakeClock, type FakeClock } from './helpers/clock.js'
import { harness, signIn, type Harness } from './helpers/setup.js'

const DAY = 86_400_000

/** A memory backend without the synchronous fast path (as Redis with localCacheMs: 0), counting round trips. */
function networkLike (): StoreBackend & { roundTrips: number, writesDown: boolean, writesBeforeDown: number | undefined } {
  const inner = memoryBackend()
  const backend = Object.create(inner) as StoreBackend & { roundTrips: number, writesDown: boolean, writesBeforeDown: number | undefined }
  backend.roundTrips = 0
  backend.writesDown = false
  backend.writesBeforeDown = undefined
  backend.getSync = undefined
  backend.get = async (key) => { backend.roundTrips++; return await inner.get(key) }
  backend.getMany = async (keys) => { backend.roundTrips++; return await inner.getMany!(keys) }
  backend.compareAndSet = async (...args) => {
    if (backend.writesBeforeDown !== undefined && backend.writesBeforeDown-- <= 0) backend.writesDown = true
    if (backend.writesDown) throw new Error('READONLY')
    return await inner.compareAndSet(...args)
  }
  return backend
}

async function signedIn (backend: StoreBackend, clock: FakeClock = fakeClock()): Promise<Harness & { cookie: string, sub: string }> {
  const h = await harness({
    backend,
    ims: { now: clock.now },
    plugin: { now: clock.now },
    routes: (app) => {
      app.get('/who', async (request) => {
        const [user, info] = await Promise.all([request.lightroomUserId(), request.lightroomTokenInfo()])
        return { user: user ?? null, tokenUser: info?.userId ?? null }
      })
      // What a Lightroom call does when Lightroom refuses the token.
      app.get('/rejected', async (request) => ({ token: await request.lightroomToken({ force: true }) }))
    }
  })
  const browser = h.browser()
  await signIn(browser)
  return { ...h, cookie: browser.cookieHeader(), sub: h.ims.users[0]!.sub }
}

test('calls in one request that ask who is signed in, at once, share one round trip', async (t) => {
  const backend = networkLike()
  const h = await signedIn(backend)
  t.teardown(h.close)
  backend.roundTrips = 0
  const response = await h.app.inject({ url: '/who', headers: { cookie: h.cookie } })
  t.same(response.json(), { user: h.sub, tokenUser: h.sub })
  t.equal(backend.roundTrips, 1)
})

test('a token record read with the session that is corrupt signs the user out, as a separate read would', async (t) => {
  const backend = networkLike()
  const h = await signedIn(backend)
  t.teardown(h.close)
  const events: string[] = []
  h.app.lightroom.events.on('logout', ({ reason }) => events.push(reason))
  const stored = (await h.store.get<TokenSet>(tokenKey(h.sub)))!
  // Authentic (our key) but not a token set: only a bug or a hand-edited record looks like this.
  await h.store.set(tokenKey(h.sub), { ...stored.value, accessToken: 42 }, DAY)
  const response = await h.app.inject({ url: '/token', headers: { cookie: h.cookie } })
  t.equal(response.statusCode, 401)
  t.same(events, ['corrupt_record'])
  t.equal(await backend.get(tokenKey(h.sub)), undefined, 'the record was removed')
  t.ok(h.logs.some((line) => line.includes('"reason":"shape"')))
})

test('a refreshed set the store could not take is written before a request reads the record with its session', async (t) => {
  const backend = networkLike()
  const h = await signedIn(backend)
  t.teardown(h.close)
  const before = (await h.app.inject({ url: '/token', headers: { cookie: h.cookie } })).json().token as string
  // Lightroom refused the token: a forced refresh, and the store stops taking writes once the refresh
  // has marked the record (its first write), before the new set is written. The stored set still
  // looks fresh, so only the pending set tells a request that its token is the old one.
  backend.writesBeforeDown = 1
  const refreshed = await h.app.inject({ url: '/rejected', headers: { cookie: h.cookie } })
  t.equal(refreshed.statusCode, 200)
  const fresh = refreshed.json().token as string
  t.not(fresh, before, 'refreshed, although the store could not take the new set')
  backend.writesBeforeDown = undefined
  backend.writesDown = false
  const next = await h.app.inject({ url: '/token', headers: { cookie: h.cookie } })
  t.equal(next.json().token, fresh, 'the pending set, not the stale one the round trip fetched')
  t.equal((await h.store.get<TokenSet>(tokenKey(h.sub)))!.value.accessToken, fresh, 'and it is now in the store')
  t.equal(h.ims.count('token:refresh_token'), 1, 'no second refresh')
})

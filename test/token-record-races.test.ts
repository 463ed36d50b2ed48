// Issue 12, item 4: every write the token manager makes to a user's record is a compare-and-set
// against the version it judged, so a write from another instance landing in between is never lost.
import { test, type Test } from 'tap'
import { memoryBackend, type StoreBackend } from '../index.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import { LOGOUT, signInUser } from './helpers/flows.js'
import { APP_ORIGIN, harness, type Harness } from './helpers/setup.js'

const SUB = 'RACE0000000000000000000A@AdobeID'

/** A memory backend whose reads of the user's token record can be made to lie for a while (a race, replayed). */
function racingBackend (): { backend: StoreBackend, onTokenRead: { next?: (raw: string | undefined) => Promise<string | undefined> } } {
  const inner = memoryBackend()
  const onTokenRead: { next?: (raw: string | undefined) => Promise<string | undefined> } = {}
  const backend: StoreBackend = {
    ...inner,
    get: async (key) => {
      const raw = await inner.get(key)
      return key === tokenKey(SUB) && onTokenRead.next !== undefined ? await onTokenRead.next(raw) : raw
    },
    // The request path reads the session and the tokens together: the same race there.
    getMany: async (keys) => await Promise.all(keys.map(async (key) => await backend.get(key)))
  }
  return { backend, onTokenRead }
}

async function world (t: Test, backend: StoreBackend): Promise<Harness> {
  const h = await harness({
    backend,
    ims: { users: [{ sub: SUB }] },
    routes: (app) => {
      app.get('/whoami', async (request) => ({ user: (await request.lightroomUserId()) ?? null }))
    }
  })
  t.teardown(h.close)
  return h
}

test('a corrupt token record is removed only while it is still that record: a valid one written meanwhile by another instance stays', async (t) => {
  const { backend, onTokenRead } = racingBackend()
  const h = await world(t, backend)
  const { cookie } = await signInUser(h, SUB)
  const valid = (await h.backend.get(tokenKey(SUB)))!
  await h.backend.set(tokenKey(SUB), 'v1.k1.AAAA.AAAA.AAAA')
  // This instance reads the damaged record; right after, another instance writes a good one.
  onTokenRead.next = async (raw) => {
    onTokenRead.next = undefined
    await h.backend.set(tokenKey(SUB), valid)
    return raw
  }
  const answer = await h.app.inject({ url: '/token', headers: { cookie } })
  t.equal(answer.statusCode, 200, 'the request is served from the record written meanwhile')
  t.equal(await h.backend.get(tokenKey(SUB)), valid, 'and that record was not deleted')
  t.ok(h.logs.some((line) => line.includes('unreadable')), 'the damaged one was noticed')
})

test('a sign-in that keeps losing its compare-and-set never falls back to a plain write that brings back sessions a sign-out ended', async (t) => {
  const { backend, onTokenRead } = racingBackend()
  const h = await world(t, backend)
  const stolen = (await signInUser(h, SUB)).cookie
  const before = await h.backend.get(tokenKey(SUB))
  // The sign-out lands while a sign-in (in another tab, another instance) still works from the
  // record it read before: every one of its reads sees the old record, which no longer exists.
  t.equal((await h.app.inject({ method: 'POST', url: LOGOUT, headers: { cookie: stolen, origin: APP_ORIGIN } })).statusCode, 303)
  t.equal((await h.app.inject({ url: '/whoami', headers: { cookie: stolen } })).json().user, null, 'signed out')
  onTokenRead.next = async () => before
  const again = await signInUser(h, SUB).catch((error: Error) => error)
  onTokenRead.next = undefined
  t.match(String(again), /ended with 503/, 'the sign-in that cannot be stored says so (503), it does not overwrite')
  t.equal((await h.app.inject({ url: '/whoami', headers: { cookie: stolen } })).json().user, null, 'the session the sign-out ended stays ended')
  t.equal(await h.backend.get(tokenKey(SUB)), undefined, 'nothing was written over the sign-out')
  const fresh = await signInUser(h, SUB)
  t.equal((await h.app.inject({ url: '/whoami', headers: { cookie: fresh.cookie } })).json().user, SUB, 'a sign-in once the race is over works')
})

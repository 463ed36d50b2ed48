// A sign-out that holds: attacks 1-5 of issue 10, each played end to end against the mock IMS with
// an attacker who holds a stolen session cookie and, for some, write access to the store.
import { test, type Test } from 'tap'
import { memoryBackend } from '../index.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import { fakeClock } from './helpers/clock.js'
import { LOGOUT, signInUser } from './helpers/flows.js'
import { APP_ORIGIN, harness, rawRecords, type Harness, type HarnessOptions } from './helpers/setup.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const VICTIM = 'F1C71A00000000000000000F@AdobeID'
const users = [{ sub: VICTIM }]

async function world (t: Test, options: HarnessOptions = {}): Promise<Harness & { clock: ReturnType<typeof fakeClock> }> {
  const clock = fakeClock()
  const h = await harness({
    backend: memoryBackend({ now: clock.now }),
    ...options,
    ims: { users, now: clock.now, ...options.ims },
    plugin: { now: clock.now, ...options.plugin },
    routes: (app) => {
      app.get('/whoami', async (request) => ({ user: (await request.lightroomUserId()) ?? null }))
    }
  })
  t.teardown(h.close)
  return { ...h, clock }
}

async function whoAmI (h: Harness, cookie: string): Promise<string | null> {
  return (await h.app.inject({ url: '/whoami', headers: { cookie } })).json().user
}

async function signOut (h: Harness, cookie: string): Promise<number> {
  return (await h.app.inject({ method: 'POST', url: LOGOUT, headers: { cookie, origin: APP_ORIGIN } })).statusCode
}

async function sessionRecords (h: Harness): Promise<Map<string, string>> {
  return await rawRecords(h.backend, 'session:')
}

async function restore (h: Harness, copies: Map<string, string>): Promise<void> {
  for (const [key, value] of copies) await h.backend.set(key, value)
}

test('attack 1: a session stolen before a sign-out stays out after the user idles past the token record\'s life and signs in again', async (t) => {
  const h = await world(t)
  const stolen = (await signInUser(h, VICTIM)).cookie
  h.clock.advance(HOUR)
  const laptop = (await signInUser(h, VICTIM)).cookie
  t.equal(await signOut(h, laptop), 303)
  t.equal(await whoAmI(h, stolen), null, 'the sign-out ends the stolen session')
  h.clock.advance(HOUR)
  await signInUser(h, VICTIM)
  // Idle past the token record's life (the refresh token's 14 days plus a day): the record expires.
  h.clock.advance(16 * DAY)
  t.equal(await h.backend.get(tokenKey(VICTIM)), undefined, 'the token record has expired')
  const again = (await signInUser(h, VICTIM)).cookie
  t.equal(await whoAmI(h, again), VICTIM, 'the new sign-in works')
  t.equal(await whoAmI(h, stolen), null, 'the stolen session, 16 days old and within its 30, is not revived')
})

test('attack 2: deleting the token record after a sign-out, then a new sign-in, revives no stolen session (even with its session record put back)', async (t) => {
  const h = await world(t)
  const stolen = (await signInUser(h, VICTIM)).cookie
  const stolenSessions = await sessionRecords(h)
  t.equal(await signOut(h, stolen), 303)
  await h.backend.delete(tokenKey(VICTIM))
  await restore(h, stolenSessions)
  const fresh = (await signInUser(h, VICTIM)).cookie
  t.equal(await whoAmI(h, fresh), VICTIM)
  t.equal(await whoAmI(h, stolen), null, 'the stolen session stays signed out')
})

test('attack 2: a corrupted token record at the next sign-in drops no sign-out: stolen sessions stay out', async (t) => {
  const h = await world(t)
  const stolen = (await signInUser(h, VICTIM)).cookie
  const stolenSessions = await sessionRecords(h)
  t.equal(await signOut(h, stolen), 303)
  await h.backend.set(tokenKey(VICTIM), 'v1.a.garbage.garbage')
  await restore(h, stolenSessions)
  const fresh = (await signInUser(h, VICTIM)).cookie
  t.equal(await whoAmI(h, fresh), VICTIM)
  t.equal(await whoAmI(h, stolen), null, 'the stolen session stays signed out')
  t.ok(h.logs.some((line) => line.includes('unreadable at sign-in')), 'the unreadable record is logged')
})

test('attack 2: an older copy of the token record put back after a sign-out revives no session, before or after a new sign-in', async (t) => {
  const h = await world(t)
  const stolen = (await signInUser(h, VICTIM)).cookie
  h.clock.advance(HOUR)
  const phone = (await signInUser(h, VICTIM)).cookie
  const olderRecord = (await rawRecords(h.backend, 'tokens:')).get(tokenKey(VICTIM))!
  t.equal(await signOut(h, phone), 303)
  await h.backend.set(tokenKey(VICTIM), olderRecord)
  t.equal(await whoAmI(h, stolen), null, 'the copy lists the stolen session\'s sign-in, but its session record went with the sign-out')
  t.equal(await whoAmI(h, phone), null)
  const fresh = (await signInUser(h, VICTIM)).cookie
  t.equal(await whoAmI(h, fresh), VICTIM)
  t.equal(await whoAmI(h, stolen), null, 'still out after a new sign-in')
  t.equal(await whoAmI(h, phone), null)
})

test('attack 3: a session from before the last sign-out cannot POST /logout the user\'s current grant away', async (t) => {
  const h = await world(t)
  const stolen = (await signInUser(h, VICTIM)).cookie
  const stolenSessions = await sessionRecords(h)
  t.equal(await signOut(h, stolen), 303)
  // The attacker even puts the old session record back.
  await restore(h, stolenSessions)
  const current = (await signInUser(h, VICTIM)).cookie
  const grants = h.ims.activeRefreshTokens(VICTIM)
  const revokes = h.ims.count('revoke')
  t.equal(await signOut(h, stolen), 303, 'the stale session is answered like any sign-out')
  t.equal(h.ims.count('revoke'), revokes, 'nothing revoked')
  t.same(h.ims.activeRefreshTokens(VICTIM), grants, 'the current grant is live')
  t.equal(await whoAmI(h, current), VICTIM, 'and the current session still signed in')
})

for (const revocationScope of ['grant', 'user-client'] as const) {
  test(`attack 4 (IMS revoking per ${revocationScope}): three devices, then a global sign-out: no grant of the user stays live at IMS`, async (t) => {
    const h = await world(t, { ims: { revocationScope } })
    const devices = []
    for (let i = 0; i < 3; i++) {
      devices.push((await signInUser(h, VICTIM)).cookie)
      h.clock.advance(HOUR)
    }
    t.equal(h.ims.activeRefreshTokens(VICTIM).length, 3, 'each sign-in made a grant')
    for (const cookie of devices) t.equal(await whoAmI(h, cookie), VICTIM, 'a sign-in on another device signs no device out')
    // The first device's requests go on working on the shared, newest grant (a refresh included).
    h.clock.advance(25 * HOUR)
    const refreshed = await h.app.inject({ url: '/token', headers: { cookie: devices[0]! } })
    t.equal(refreshed.statusCode, 200, 'the oldest device refreshes fine')
    t.equal(await signOut(h, devices[1]!), 303)
    t.same(h.ims.activeRefreshTokens(VICTIM), [], 'every grant revoked')
    for (const cookie of devices) t.equal(await whoAmI(h, cookie), null, 'every device signed out')
  })
}

test('attack 5: sessions per user are capped (10 by default), the oldest evicted, their records deleted', async (t) => {
  const h = await world(t)
  const cookies = []
  for (let i = 0; i < 12; i++) {
    cookies.push((await signInUser(h, VICTIM)).cookie)
    h.clock.advance(60_000)
  }
  t.equal((await sessionRecords(h)).size, 10, 'ten session records, not twelve')
  t.equal(await whoAmI(h, cookies[0]!), null, 'the oldest is signed out')
  t.equal(await whoAmI(h, cookies[1]!), null)
  for (const cookie of cookies.slice(2)) t.equal(await whoAmI(h, cookie), VICTIM, 'the ten newest are signed in')
  // Replaced grants are capped alike: the eleventh one back was revoked when it fell off.
  t.equal(h.ims.activeRefreshTokens(VICTIM).length, 11, 'the current grant and ten replaced ones are live')
  t.equal(await signOut(h, cookies[11]!), 303)
  t.same(h.ims.activeRefreshTokens(VICTIM), [], 'the sign-out revokes every one')
  t.equal((await sessionRecords(h)).size, 0, 'and deletes every session record')
})

test('maxSessionsPerUser sets the cap', async (t) => {
  const h = await world(t, { plugin: { maxSessionsPerUser: 1 } })
  const first = (await signInUser(h, VICTIM)).cookie
  const second = (await signInUser(h, VICTIM)).cookie
  t.equal(await whoAmI(h, first), null)
  t.equal(await whoAmI(h, second), VICTIM)
  t.equal((await sessionRecords(h)).size, 1)
})

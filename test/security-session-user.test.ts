/**
 * Cookies that name their user (`<sessionId>.<base64url(userId)>`, signed), so that a request reads
 * its session and its tokens in one round trip: what that must not weaken. The user part cannot be
 * swapped (it is under the signature), a session record naming another user than its cookie is no
 * session, cookies from before the change keep working until their session ends, and a session from
 * before a sign-out stays dead on both kinds of cookie.
 */
import { test } from 'tap'
import { Signer } from '@fastify/cookie'
import { randomBytes } from 'node:crypto'
import { sessionKey, type SessionRecord } from '../lib/auth/session.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import type { TokenSet } from '../lib/auth/token-set.js'
import type { Browser } from './helpers/browser.js'
import { LOGOUT, cookieNames, sessionKeyOfCookie, signInUser } from './helpers/flows.js'
import { APP_ORIGIN, COOKIE_SECRET, harness, type Harness } from './helpers/setup.js'

const ALICE = 'A11CE000000000000000000A@AdobeID'
const BOB = 'B0B00000000000000000000B@AdobeID'
const name = cookieNames().session
const signer = new Signer([COOKIE_SECRET], 'sha256')
const userPart = (userId: string): string => Buffer.from(userId, 'utf8').toString('base64url')
/** The session cookie as the app signed it (the jar keeps it URI-encoded, as sent). */
const cookieOf = (browser: Browser): string => decodeURIComponent(browser.cookies.get(name)!)

async function twoUsers (): Promise<Harness & { whoAmI: (cookie: string) => Promise<{ status: number, user: string | null }> }> {
  const h = await harness({
    ims: { users: [{ sub: ALICE }, { sub: BOB }] },
    routes: (app) => app.get('/whoami', async (request) => ({ user: await request.lightroomUserId() ?? null, token: (await request.lightroomTokenInfo())?.userId ?? null }))
  })
  const whoAmI = async (cookie: string): Promise<{ status: number, user: string | null }> => {
    const response = await h.app.inject({ url: '/token', headers: { cookie: `${name}=${encodeURIComponent(cookie)}` } })
    const who = await h.app.inject({ url: '/whoami', headers: { cookie: `${name}=${encodeURIComponent(cookie)}` } })
    return { status: response.statusCode, user: who.json().user }
  }
  return { ...h, whoAmI }
}

test('a new session cookie names its user, signed; its record lives under session:<user>.<hash of the id>', async (t) => {
  const h = await twoUsers()
  t.teardown(h.close)
  const { browser } = await signInUser(h, ALICE)
  const cookie = cookieOf(browser)
  const [id, user, signature] = cookie.split('.')
  t.match(id, /^[A-Za-z0-9_-]{43}$/, 'a 256-bit random session id first')
  t.equal(user, userPart(ALICE), 'then the user id, base64url')
  t.ok(signature !== undefined && signature.length >= 43, 'then the signature over both')
  t.equal(signer.unsign(cookie).valid, true, 'signed by @fastify/cookie\'s Signer over "<id>.<user>"')
  t.equal(sessionKeyOfCookie(cookie), `session:${userPart(ALICE)}.${sessionKey(id!).slice('session:'.length)}`)
  t.ok(await h.backend.get(sessionKeyOfCookie(cookie)), 'the record is under that key')
  t.equal((await h.whoAmI(cookie)).user, ALICE)
})

test('the user part cannot be swapped: the signature covers it', async (t) => {
  const h = await twoUsers()
  t.teardown(h.close)
  const alice = cookieOf((await signInUser(h, ALICE)).browser)
  await signInUser(h, BOB)
  const [id, , signature] = alice.split('.')
  const swapped = `${id}.${userPart(BOB)}.${signature}`
  t.same(await h.whoAmI(swapped), { status: 401, user: null }, 'Alice\'s id with Bob\'s name and Alice\'s signature is no session')
  const otherSecret = new Signer(['another-secret-that-is-long-enough-0000'], 'sha256').sign(`${id}.${userPart(BOB)}`)
  t.same(await h.whoAmI(otherSecret), { status: 401, user: null }, 're-signed with a secret the app does not hold: no session')
  const dropped = signer.sign(id!)
  t.same(await h.whoAmI(dropped), { status: 401, user: null }, 'the user part dropped (validly signed): the old-format key holds no record')
  for (const odd of [`${id}.`, `${id}.${userPart(ALICE)}=`, `${id}.${userPart(ALICE)}.${userPart(ALICE)}`, `${id}.!!`]) {
    t.same(await h.whoAmI(signer.sign(odd)), { status: 401, user: null }, `a validly signed but malformed value (${odd.slice(43)}) is no session`)
  }
  t.equal((await h.whoAmI(alice)).user, ALICE, 'the genuine cookie still works')
})

test('a session record naming another user than its cookie is refused, on the fast path too', async (t) => {
  const h = await twoUsers()
  t.teardown(h.close)
  const alice = cookieOf((await signInUser(h, ALICE)).browser)
  await signInUser(h, BOB)
  const key = sessionKeyOfCookie(alice)
  const record = (await h.store.get<SessionRecord>(key))!.value
  // Someone with write access to the store puts, under Alice's session key, a record that names
  // Bob but keeps Alice's sign-in id: Alice's token record lists that sign-in, so without the
  // cookie-user check the request would run with Alice's tokens as "Bob".
  await h.store.set(key, { ...record, userId: BOB }, 60_000)
  for (const attempt of ['first request (read from the store)', 'second request (decrypted record cached)']) {
    t.same(await h.whoAmI(alice), { status: 401, user: null }, `${attempt}: refused`)
  }
  t.ok(h.logs.some((line) => line.includes('"reason":"user-mismatch"')), 'logged, by reason only')
  await h.store.set(key, record, 60_000)
  t.equal((await h.whoAmI(alice)).user, ALICE, 'the genuine record back: the session works again')
})

/** Turns a fresh new-format session into one made before cookies named the user: record key and cookie. */
async function asOldCookie (h: Harness, cookie: string, userId: string): Promise<string> {
  const newKey = sessionKeyOfCookie(cookie)
  const id = cookie.split('.')[0]!
  const oldKey = sessionKey(id)
  const session = (await h.store.get<SessionRecord>(newKey))!.value
  await h.store.set(oldKey, session, 60_000)
  await h.store.delete(newKey)
  const tokens = (await h.store.get<TokenSet>(tokenKey(userId)))!.value
  const signIns = tokens.signIns!.map((signIn) => signIn.id === session.signInId ? { ...signIn, sessionKey: oldKey } : signIn)
  await h.store.set(tokenKey(userId), { ...tokens, signIns }, 86_400_000)
  return signer.sign(id)
}

test('a cookie from before cookies named the user keeps working until its session ends, then stays dead', async (t) => {
  const h = await twoUsers()
  t.teardown(h.close)
  const old = await asOldCookie(h, cookieOf((await signInUser(h, ALICE)).browser), ALICE)
  t.equal(old.split('.').length, 2, 'the old format: <id>.<signature>')
  t.same(await h.whoAmI(old), { status: 200, user: ALICE }, 'the upgrade signs nobody out')
  t.same(await h.whoAmI(old), { status: 200, user: ALICE }, 'and again, from the cache')
  // A sign-out from another browser of Alice's (a new-format cookie) ends the old session too.
  const other = await signInUser(h, ALICE)
  t.equal((await h.whoAmI(cookieOf(other.browser))).user, ALICE)
  const logout = await other.browser.request('POST', LOGOUT, { headers: { origin: APP_ORIGIN } })
  t.equal(logout.status, 303)
  t.same(await h.whoAmI(old), { status: 401, user: null }, 'the old cookie is dead after the sign-out')
  t.equal(await h.backend.get(sessionKey(old.split('.')[0]!)), undefined, 'its record was deleted with the others')
  const again = await signInUser(h, ALICE)
  t.equal((await h.whoAmI(cookieOf(again.browser))).user, ALICE, 'a new sign-in works')
  t.same(await h.whoAmI(old), { status: 401, user: null }, 'and does not revive the session from before the sign-out')
})

test('a new-format session from before a sign-out stays dead, and its own logout works', async (t) => {
  const h = await twoUsers()
  t.teardown(h.close)
  const first = cookieOf((await signInUser(h, ALICE)).browser)
  const second = await signInUser(h, ALICE)
  const ended = await second.browser.request('POST', LOGOUT, { headers: { origin: APP_ORIGIN } })
  t.equal(ended.status, 303)
  t.same(await h.whoAmI(first), { status: 401, user: null }, 'the other browser\'s session ended with the sign-out')
  await signInUser(h, ALICE)
  t.same(await h.whoAmI(first), { status: 401, user: null }, 'and stays dead after the next sign-in')
  // An old cookie's own logout ends its own session.
  const old = await asOldCookie(h, cookieOf((await signInUser(h, BOB)).browser), BOB)
  const logout = await h.app.inject({ method: 'POST', url: LOGOUT, headers: { origin: APP_ORIGIN, cookie: `${name}=${encodeURIComponent(old)}` } })
  t.equal(logout.statusCode, 303)
  t.same(await h.whoAmI(old), { status: 401, user: null }, 'an old cookie signs out too')
})

test('a user id too long to carry gets a cookie without it, read in two steps', async (t) => {
  const long = `${'L'.repeat(310)}@AdobeID`
  const h = await harness({ ims: { users: [{ sub: long }] }, routes: (app) => app.get('/whoami', async (request) => ({ user: await request.lightroomUserId() ?? null })) })
  t.teardown(h.close)
  const { browser } = await signInUser(h, long)
  const cookie = cookieOf(browser)
  t.equal(cookie.split('.').length, 2, '<id>.<signature>: no user part')
  t.ok(cookie.length <= 512, 'within the cookie length the app verifies')
  const who = await h.app.inject({ url: '/whoami', headers: { cookie: `${name}=${encodeURIComponent(cookie)}` } })
  t.equal(who.json().user, long)
})

test('a signed value with a user part longer than the cap is never verified', async (t) => {
  const h = await twoUsers()
  t.teardown(h.close)
  const forged = signer.sign(`${randomBytes(32).toString('base64url')}.${userPart('x'.repeat(400))}`)
  t.ok(forged.length > 512)
  t.same(await h.whoAmI(forged), { status: 401, user: null })
})

// Cookies: every cookie the plugin sets or clears is HttpOnly and SameSite=Lax; on an https app it
// is also Secure and `__Host-` prefixed (host-only: no Domain, Path=/), and a clearing Set-Cookie
// keeps those attributes, or browsers would ignore it. On a plain-http (development) redirect URI
// neither Secure nor `__Host-` is used, or the browser would drop every cookie. Signing in always
// issues a new session id: a planted one is never promoted (no fixation).
import { test, type Test } from 'tap'
import { Signer } from '@fastify/cookie'
import { randomBytes } from 'node:crypto'
import { sessionKey } from '../lib/auth/session.js'
import { Browser, type Page } from './helpers/browser.js'
import { CALLBACK, LOGIN, LOGOUT, authorizeAs, cookieNames, sessionKeyOfCookie, setCookies, signInUser, type SetCookie } from './helpers/flows.js'
import { APP_ORIGIN, COOKIE_SECRET, harness, type Harness } from './helpers/setup.js'

const DEV_ORIGIN = 'http://localhost:3000'

/** Every Set-Cookie of the plugin in a sign-in, a failed callback and a sign-out, labelled by step. */
async function cookieLifecycle (h: Harness, browser: Browser, origin: string): Promise<Array<{ step: string, cookie: SetCookie }>> {
  const seen: Array<{ step: string, cookie: SetCookie }> = []
  const collect = (step: string, page: Page): void => { for (const cookie of setCookies(page.headers)) seen.push({ step, cookie }) }
  const login = await browser.get(LOGIN)
  collect('login', login)
  const callback = await authorizeAs(browser, new URL(login.location!), h.ims.users[0]!.sub)
  const done = await browser.get(`${callback.pathname}${callback.search}`)
  if (done.status !== 303) throw new Error(`sign-in answered ${done.status}`)
  collect('callback', done)
  collect('failed callback', await browser.get(`${CALLBACK}?code=x&state=forged`))
  collect('logout', await browser.request('POST', LOGOUT, { headers: { origin } }))
  return seen
}

function checkAttributes (t: Test, seen: Array<{ step: string, cookie: SetCookie }>, secure: boolean): void {
  const names = cookieNames(secure)
  for (const { step, cookie } of seen) {
    const what = `${step}: ${cookie.name}${cookie.value === '' ? ' (cleared)' : ''}`
    t.ok([names.session, names.state, names.verifier].includes(cookie.name), `${what} is one of ours, ${secure ? 'with' : 'without'} the __Host- prefix`)
    t.equal(cookie.attributes.get('httponly'), true, `${what}: HttpOnly`)
    t.equal(String(cookie.attributes.get('samesite')).toLowerCase(), 'lax', `${what}: SameSite=Lax`)
    t.equal(cookie.attributes.get('path'), '/', `${what}: Path=/`)
    t.notOk(cookie.attributes.has('domain'), `${what}: host-only, no Domain`)
    t.equal(cookie.attributes.has('secure'), secure, `${what}: ${secure ? 'Secure' : 'not Secure (plain http)'}`)
  }
}

test('https: session and flow cookies are __Host- prefixed, Secure, HttpOnly, SameSite=Lax, Path=/, host-only, when set and when cleared', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  const seen = await cookieLifecycle(h, h.browser(), APP_ORIGIN)
  const names = cookieNames(true)
  const steps = seen.map(({ step, cookie }) => `${step}:${cookie.name}:${cookie.value === '' ? 'clear' : 'set'}`)
  for (const expected of [
    `login:${names.state}:set`, `login:${names.verifier}:set`,
    `callback:${names.state}:clear`, `callback:${names.verifier}:clear`, `callback:${names.session}:set`,
    `failed callback:${names.state}:clear`, `failed callback:${names.verifier}:clear`,
    `logout:${names.session}:clear`
  ]) t.ok(steps.includes(expected), expected)
  checkAttributes(t, seen, true)
  const session = seen.find(({ cookie }) => cookie.name === names.session && cookie.value !== '')!.cookie
  t.equal(session.attributes.get('max-age'), String(30 * 86400), 'the session cookie lives as long as its record (30 days)')
  const userPart = Buffer.from(h.ims.users[0]!.sub, 'utf8').toString('base64url')
  t.match(decodeURIComponent(session.value), new RegExp(`^[A-Za-z0-9_-]{43}\\.${userPart}\\.[A-Za-z0-9_+/=-]+$`), 'the session cookie is a signed random id and the user id, nothing else')
})

test('plain-http redirect URI (development): no Secure and no __Host- prefix, still HttpOnly and SameSite=Lax, and sign-in works', async (t) => {
  const h = await harness({ plugin: { redirectUri: `${DEV_ORIGIN}/auth/lightroom/callback` } })
  t.teardown(h.close)
  const browser = new Browser(h.app, DEV_ORIGIN)
  const seen = await cookieLifecycle(h, browser, DEV_ORIGIN)
  checkAttributes(t, seen, false)
  t.ok(seen.some(({ cookie }) => cookie.name === 'lr_session' && cookie.value !== ''), 'a session cookie named lr_session was set')
  t.notOk(seen.some(({ cookie }) => cookie.name.startsWith('__Host-') || cookie.name.startsWith('__Secure-')), 'no prefix a browser would refuse over http')
})

test('sign-in always issues a new session id: a planted session cookie is never promoted to a signed-in one', async (t) => {
  const h = await harness({
    ims: { users: [{ sub: 'F1C71A00000000000000000F@AdobeID' }, { sub: 'A77AC6E5000000000000000A@AdobeID' }] },
    routes: (app) => app.get('/whoami', async (request) => ({ user: (await request.lightroomUserId()) ?? null }))
  })
  t.teardown(h.close)
  const [victim, attacker] = h.ims.users.map((user) => user.sub) as [string, string]
  const name = cookieNames(true).session
  const whoAmI = async (value: string): Promise<string | null> => (await h.app.inject({ url: '/whoami', headers: { cookie: `${name}=${value}` } })).json().user
  const signer = new Signer([COOKIE_SECRET], 'sha256')

  // The attacker's own live session; a validly signed id that has no record (say, leaked from a
  // log); and a forgery with no valid signature.
  const attackersOwn = (await signInUser(h, attacker)).browser.cookies.get(name)!
  const unusedId = randomBytes(32).toString('base64url')
  const plants: Array<[string, string]> = [
    ['the attacker\'s own live session', attackersOwn],
    ['a validly signed id without a record', signer.sign(unusedId)],
    ['a forged id', `${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64url')}`]
  ]
  t.equal(await whoAmI(attackersOwn), attacker, 'the attacker\'s session works before the plant')
  for (const [what, planted] of plants) {
    const browser = h.browser()
    browser.cookies.set(name, planted)
    const login = await browser.get(LOGIN)
    const callback = await authorizeAs(browser, new URL(login.location!), victim)
    const done = await browser.get(`${callback.pathname}${callback.search}`)
    t.equal(done.status, 303, `${what}: the victim signs in`)
    const issued = browser.cookies.get(name)!
    t.not(issued, planted, `${what}: the browser got a new session id`)
    t.not(issued.split('.')[0], planted.split('.')[0], `${what}: not merely a new signature over the same id`)
    t.equal(await whoAmI(issued), victim, `${what}: the new session is the victim's`)
    t.equal(await whoAmI(planted), null, `${what}: the planted cookie is not signed in as anyone`)
  }
  t.equal(await h.backend.get(sessionKey(unusedId)), undefined, 'no record was ever created for the planted id')
  t.equal(await h.backend.get(sessionKeyOfCookie(attackersOwn)), undefined, 'the attacker\'s planted session was ended, not handed to the victim')
})

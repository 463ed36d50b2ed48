import { test } from 'tap'
import { fakeClock } from './helpers/clock.js'
import { APP_ORIGIN, harness, signIn } from './helpers/setup.js'

const HOUR = 3_600_000

function entries (logs: string[]): Array<Record<string, unknown>> {
  return logs.map((line) => JSON.parse(line) as Record<string, unknown>)
}

test('hooks that run after the logout or callback route see who is signed in now, not who was', async (t) => {
  const seen: Array<{ url: string, userId: string | null }> = []
  const h = await harness({
    beforePlugin: async (app) => {
      // A host app's audit hook: asks before the route (preHandler) and again after it (onSend).
      app.addHook('preHandler', async (request) => { await request.lightroomUserId() })
      app.addHook('onSend', async (request, _reply, payload) => {
        if (request.url.startsWith('/auth/')) seen.push({ url: request.url.split('?')[0]!, userId: await request.lightroomUserId() ?? null })
        return payload
      })
    }
  })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  const sub = h.ims.users[0]!.sub
  t.same(seen.find((entry) => entry.url === '/auth/lightroom/callback'), { url: '/auth/lightroom/callback', userId: sub }, 'the callback request sees the user it just signed in')
  await browser.request('POST', '/auth/lightroom/logout', { headers: { origin: APP_ORIGIN } })
  t.same(seen.at(-1), { url: '/auth/lightroom/logout', userId: null }, 'the logout request sees a signed-out user after the route')
})

test('sign-in, refresh and sign-out are logged at info with the request id and user id, never a token; a signed-out 401 logs no stack', async (t) => {
  const clock = fakeClock()
  const h = await harness({ ims: { now: clock.now }, plugin: { now: clock.now } })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  clock.advance(25 * HOUR)
  t.equal((await browser.get('/token')).status, 200)
  await browser.request('POST', '/auth/lightroom/logout', { headers: { origin: APP_ORIGIN } })
  t.equal((await browser.get('/token')).status, 401)
  const sub = h.ims.users[0]!.sub
  const lines = entries(h.logs)
  for (const msg of ['lightroom-ims: user signed in', 'lightroom-ims: tokens refreshed', 'lightroom-ims: user signed out']) {
    const line = lines.find((entry) => entry.msg === msg)
    t.ok(line, `logged: ${msg}`)
    t.equal(line?.level, 30, `${msg}: at info`)
    t.equal(line?.userId, sub, `${msg}: with the user id`)
    t.type(line?.reqId, 'string', `${msg}: with the request id`)
  }
  const refreshed = lines.find((entry) => entry.msg === 'lightroom-ims: tokens refreshed')
  t.match(refreshed, { reason: 'expiring', accessExpiresAt: Number, refreshRotated: true })
  const signedOut = lines.filter((entry) => JSON.stringify(entry).includes('LR_LOGIN_REQUIRED'))
  t.ok(signedOut.length > 0, 'the 401 is logged')
  for (const entry of signedOut) t.notMatch(JSON.stringify(entry), /\\n\s+at /, 'without a stack trace')
})

test('renewal runs are logged at info, one line per user and a summary', async (t) => {
  const clock = fakeClock()
  const h = await harness({ ims: { now: clock.now }, plugin: { now: clock.now } })
  t.teardown(h.close)
  await signIn(h.browser())
  clock.advance(8 * 24 * HOUR)
  const report = await h.app.lightroom.renewExpiring()
  t.match(report, { scanned: 1, renewed: 1 })
  const lines = entries(h.logs)
  t.match(lines.find((entry) => entry.msg === 'lightroom-ims: grant renewed'), { level: 30, userId: h.ims.users[0]!.sub, renewed: true })
  t.match(lines.find((entry) => entry.msg === 'lightroom-ims: renewal run finished'), { level: 30, scanned: 1, renewed: 1, failed: 0, loggedOut: 0 })
})

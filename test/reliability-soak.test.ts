// Soak: 20,000 requests from 200 signed-in users while access tokens expire every few (simulated)
// seconds and the mock IMS fails 20% of token calls, plus a 2-second total outage. Time is a fake
// clock shared by the mock IMS and the plugin, requests go through app.inject in concurrent
// rounds, and faults follow a seeded schedule: nothing here waits on wall-clock time.
import { test } from 'tap'
import type { MockImsFault } from '../lib/testing/index.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import type { TokenSet } from '../lib/auth/token-set.js'
import { fakeClock } from './helpers/clock.js'
import { TokenFaultSchedule } from './helpers/fault-schedule.js'
import { inBatches, signInUser } from './helpers/flows.js'
import { seededRng, testSeed } from './helpers/prng.js'
import { harness } from './helpers/setup.js'

const USERS = 200
const REQUESTS = 20_000
/** Requests in flight together; users are drawn with replacement, so one user often has several. */
const ROUND_SIZE = 200
const ROUNDS = REQUESTS / ROUND_SIZE
/** Simulated time between rounds: 100 rounds cover 25 s. */
const STEP_MS = 250
const ACCESS_LIFETIME_S = 4
const REFRESH_MARGIN_S = 1
/** The plugin spreads refreshes over a tenth of the margin (lib/token-manager.ts). */
const JITTER_MAX_MS = (REFRESH_MARGIN_S * 1000) / 10
/** Rounds during which every token call fails: 2 s, longer than the refresh window, so some tokens expire in it. */
const OUTAGE = { from: 40, to: 48 }
/** Token calls one round can make at most, with room to spare (settle() throws if exceeded). */
const SLOTS_PER_ROUND = 4000
const FAULTS: readonly MockImsFault[] = [{ status: 500 }, { status: 502 }, { status: 503, retryAfter: 2 }, { reset: true }]

interface User {
  sub: string
  cookie: string
  /** Expiry of the access token the store holds, as last reported by sign-in or a refresh event. */
  expiresAt: number
  refreshes: number
  lastRefreshRound: number
}

test('soak: 20,000 requests, 200 users, tokens expiring every 4 s, 20% of token calls failing, one outage', async (t) => {
  const seed = testSeed(0x5eed_0006)
  t.comment(`seed ${seed} (replay with LR_TEST_SEED=${seed})`)
  const rng = seededRng(seed)
  const clock = fakeClock()
  const subs = Array.from({ length: USERS }, (_, i) => `${(0xA0000000 + i).toString(16).toUpperCase().padEnd(24, '0')}@AdobeID`)
  const h = await harness({
    ims: { now: clock.now, accessTokenLifetimeSeconds: ACCESS_LIFETIME_S, users: subs.map((sub) => ({ sub })) },
    plugin: { now: clock.now, refreshMarginSeconds: REFRESH_MARGIN_S, imsRetry: { retryBaseDelayMs: 1, maxRetryDelayMs: 5 } },
    // Request logging off for the hot route: 20,000 requests would otherwise be 40,000 log lines to scan.
    routes: (app) => app.get('/soak', { logLevel: 'warn' }, async (request) => ({ token: await request.lightroomToken() }))
  })
  t.teardown(h.close)

  // Sign-ins spread over 4 simulated seconds (8 groups), so expiries are spread too.
  const users: User[] = []
  for (let group = 0; group < 8; group++) {
    const groupSubs = subs.slice(group * USERS / 8, (group + 1) * USERS / 8)
    const signedIn = await inBatches(groupSubs, 25, async (sub) => await signInUser(h, sub))
    for (const [i, sub] of groupSubs.entries()) {
      const stored = await h.store.get<TokenSet>(tokenKey(sub))
      users.push({ sub, cookie: signedIn[i]!.cookie, expiresAt: stored!.value.accessExpiresAt, refreshes: 0, lastRefreshRound: -1 })
    }
    clock.advance(500)
  }
  const bySub = new Map(users.map((user) => [user.sub, user]))
  t.equal(h.ims.count('token:refresh_token'), 0, 'no refresh during sign-in')

  let round = -1
  const premature: string[] = []
  const twiceInARound: string[] = []
  const logouts: unknown[] = []
  let refreshFailures = 0
  h.app.lightroom.events.on('logout', (event) => logouts.push(event))
  h.app.lightroom.events.on('refreshFailed', () => { refreshFailures++ })
  h.app.lightroom.events.on('refresh', (event) => {
    const user = bySub.get(event.userId)!
    const left = user.expiresAt - clock.now()
    // A refresh is only due inside the margin (plus the per-user jitter): anything earlier refreshed a token twice.
    if (event.reason !== 'expiring' || left > REFRESH_MARGIN_S * 1000 + JITTER_MAX_MS) premature.push(`${event.userId} ${event.reason} with ${left} ms left`)
    if (user.lastRefreshRound === round) twiceInARound.push(`${event.userId} in round ${round}`)
    user.lastRefreshRound = round
    user.refreshes++
    user.expiresAt = event.accessExpiresAt
  })

  // Its own random stream: how many slots get generated must not shift which users are picked.
  const schedule = new TokenFaultSchedule(h.ims, seededRng(seed ^ 0xFA0175), { kinds: FAULTS, faultsPer10: 2 })
  const statuses = new Map<number, number>()
  const fiveHundredsWhileValid: string[] = []
  const wrongTokens: string[] = []
  const unexpected: string[] = []
  let expiredAnswers = 0
  let servedDuringOutageWhileDue = 0
  let requests = 0

  for (round = 0; round < ROUNDS; round++) {
    clock.advance(STEP_MS)
    const now = clock.now()
    const outage = round >= OUTAGE.from && round < OUTAGE.to
    if (outage) schedule.armOutage(SLOTS_PER_ROUND)
    else schedule.arm(SLOTS_PER_ROUND)
    const picks = Array.from({ length: ROUND_SIZE }, () => users[rng.int(0, USERS)]!)
    // The clock stands still during a round, so "valid at the start" is "valid while answered".
    const before = new Map(picks.map((user) => [user.sub, user.expiresAt]))
    const answers = await Promise.all(picks.map(async (user) => await h.app.inject({ url: '/soak', headers: { cookie: user.cookie } })))
    schedule.settle()
    requests += answers.length

    for (const [i, answer] of answers.entries()) {
      const user = picks[i]!
      const expiresAt = before.get(user.sub)!
      const stillValid = now < expiresAt
      statuses.set(answer.statusCode, (statuses.get(answer.statusCode) ?? 0) + 1)
      if (answer.statusCode === 200) {
        const seen = h.ims.introspect(answer.json().token)
        if (!seen.active || seen.sub !== user.sub) wrongTokens.push(`${user.sub} got ${seen.active ? `${seen.sub}'s` : 'a dead'} token in round ${round}`)
        if (outage && expiresAt - now <= REFRESH_MARGIN_S * 1000) servedDuringOutageWhileDue++
      } else if (answer.statusCode === 503 && answer.json().code === 'LR_IMS_UNAVAILABLE' && !stillValid) {
        expiredAnswers++
      } else if (answer.statusCode >= 500 && stillValid) {
        fiveHundredsWhileValid.push(`${user.sub}: ${answer.statusCode} in round ${round} with ${expiresAt - now} ms left`)
      } else {
        unexpected.push(`${user.sub}: ${answer.statusCode} ${answer.body.slice(0, 120)} in round ${round}`)
      }
    }
  }

  t.equal(requests, REQUESTS, '20,000 requests answered')
  t.comment(`statuses ${JSON.stringify(Object.fromEntries(statuses))}, token calls ${schedule.stats.calls} (${schedule.stats.faulted} faulted), refreshes ${users.reduce((n, u) => n + u.refreshes, 0)}, failed refreshes ${refreshFailures}`)

  // Nobody was wrongly signed out, and no valid user ever saw a 5xx.
  t.same(logouts, [], 'no logout event for anyone')
  t.same(fiveHundredsWhileValid, [], 'no 5xx for a user whose access token was still valid')
  t.same(unexpected, [], 'every answer was 200, or 503 LR_IMS_UNAVAILABLE for an expired token')
  t.same(wrongTokens, [], 'every 200 carried a live access token of that very user')
  const brokenGrants: string[] = []
  for (const user of users) {
    const stored = await h.store.get<TokenSet>(tokenKey(user.sub))
    const live = h.ims.activeRefreshTokens(user.sub)
    if (stored === undefined || live.length !== 1 || live[0] !== stored.value.refreshToken) brokenGrants.push(user.sub)
  }
  t.same(brokenGrants, [], 'every user still holds exactly the one refresh token IMS considers live')

  // Refreshes: at most one per user per expiry, never a used refresh token replayed.
  t.same(premature, [], 'no refresh of a token that was not due')
  t.same(twiceInARound, [], 'no user refreshed twice in one round (single-flight)')
  t.equal(h.ims.count('token:refresh_token:error'), 0, 'IMS never rejected a refresh token (no rotated-away token reused)')
  const refreshEvents = users.reduce((n, u) => n + u.refreshes, 0)
  t.equal(schedule.stats.calls, h.ims.count('token:refresh_token'), 'every token call after sign-in was a refresh the schedule accounted for')
  t.equal(refreshEvents, schedule.stats.calls - schedule.stats.faulted, 'every refresh IMS answered was stored and reported once: no wasted refresh')
  t.comment(`refreshes per user: ${Math.min(...users.map((u) => u.refreshes))} to ${Math.max(...users.map((u) => u.refreshes))}`)
  t.ok(users.every((u) => u.refreshes >= 5), 'every user went through several expiries (25 s of 4 s tokens)')

  // The run really exercised what it claims.
  const rate = schedule.stats.scheduledFaults / schedule.stats.scheduledCalls
  t.ok(Math.abs(rate - 0.2) <= 0.01, `20% of token calls outside the outage failed (${(rate * 100).toFixed(2)}%)`)
  t.ok(refreshFailures > 0, 'some refreshes failed outright')
  t.ok(servedDuringOutageWhileDue > 0, 'during the outage, users due for a refresh kept being served their still-valid token')
  t.ok(expiredAnswers > 0, 'tokens that expired during the outage got 503, not a logout')
})

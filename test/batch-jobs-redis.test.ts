/**
 * The nightly renewal run on every instance at once: two apps, one real Redis, one IMS. Each user is
 * renewed by exactly one of them, under the user's refresh lock; the other leaves them alone
 * instead of waiting, and nobody is signed out.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { redisBackend } from '../lib/store/redis.js'
import { createMockIms } from '../lib/testing/index.js'
import { signInAll, userIds } from './helpers/batch.js'
import { fakeClock } from './helpers/clock.js'
import { redisUnavailableReason, startRedisServer } from './helpers/redis-server.js'
import { harness } from './helpers/setup.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'

const USERS = 60
const DAY = 86_400_000

await runUnlessUnavailable(redisUnavailableReason(), main)

async function main (): Promise<void> {
  const server = await startRedisServer()
  t.teardown(server.close)
  const clients: Redis[] = []
  t.teardown(() => { for (const client of clients) client.disconnect() })
  async function instanceBackend (): Promise<ReturnType<typeof redisBackend>> {
    const client = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 })
    client.on('error', () => {})
    clients.push(client)
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
    return redisBackend(client, { prefix: 'fleet:' })
  }

  t.test('two instances renewing at once: every user renewed exactly once, all still signed in', async (t) => {
    const clock = fakeClock()
    const subs = userIds(USERS)
    const ims = await createMockIms({ now: clock.now, users: subs.map((sub) => ({ sub })) })
    t.teardown(ims.close)
    const a = await harness({ sharedIms: ims, backend: await instanceBackend(), plugin: { now: clock.now } })
    const b = await harness({ sharedIms: ims, backend: await instanceBackend(), plugin: { now: clock.now } })
    t.teardown(a.close)
    t.teardown(b.close)
    await signInAll(a, subs)
    clock.advance(8 * DAY)
    // A slow IMS keeps each renewal's lock held while the other instance reaches the same user.
    ims.fail('token:refresh_token', { delayMs: 20 }, USERS)

    const [fromA, fromB] = await Promise.all([
      a.app.lightroom.renewExpiring({ concurrency: 4 }),
      b.app.lightroom.renewExpiring({ concurrency: 4 })
    ])
    t.equal(ims.count('token:refresh_token'), USERS, 'one IMS refresh per user across both instances')
    t.equal(fromA.renewed + fromB.renewed, USERS, `the reports add up (${fromA.renewed} + ${fromB.renewed})`)
    t.ok(fromA.busy + fromB.busy > 0, `the runs did meet on the same users (busy ${fromA.busy} + ${fromB.busy})`)
    for (const report of [fromA, fromB]) t.match(report, { scanned: USERS, failed: 0, loggedOut: 0, completed: true, aborted: false })

    for (const sub of subs) {
      t.equal(ims.activeRefreshTokens(sub).length, 1, `${sub}: one working grant`)
      t.equal(ims.introspect(await b.app.lightroom.tokenFor(sub)).active, true, `${sub}: still signed in`)
    }
    t.equal(ims.count('token:refresh_token'), USERS, 'the renewed tokens are fresh: no refresh on use')
  })
}

/**
 * The Redis backend on a real Redis Cluster (3 masters, 3 replicas): the same StoreBackend contract
 * as on one Redis, a user's keys in one slot, scans that see every master, and the plugin through a
 * master's crash and its replica's promotion without anybody being signed out.
 */
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster } from 'ioredis'
import t from 'tap'
import { tokenKey } from '../lib/auth/token-manager.js'
import type { TokenSet } from '../lib/auth/token-set.js'
import { encryptedStore } from '../lib/store/encrypted.js'
import { redisBackend } from '../lib/store/redis.js'
import { groupBySlot, keySlot } from '../lib/store/redis/key-slot.js'
import { signIn } from '../lib/testing/index.js'
import { fakeClock } from './helpers/clock.js'
import { redisClusterUnavailableReason, startRedisCluster } from './helpers/redis-cluster.js'
import { collect, redisContract } from './helpers/redis-contract.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'
import { KEY_A, KEY_B, harness, type Harness } from './helpers/setup.js'

await runUnlessUnavailable(redisClusterUnavailableReason(), main)

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url')

/** The agreed layout, stated independently of the code: a user's keys carry `{base64url(userId)}`. */
function clusterKey (prefix: string, key: string): string {
  for (const form of ['tokens:', 'lock:refresh:']) {
    if (key.startsWith(form) && key.length > form.length) return `${prefix}{${b64(key.slice(form.length))}}${key}`
  }
  const session = /^session:([A-Za-z0-9_-]+)\./.exec(key)
  return session === null ? prefix + key : `${prefix}{${session[1]!}}${key}`
}

async function main (): Promise<void> {
  const cluster = await startRedisCluster()
  t.teardown(cluster.stop)
  const clients: Cluster[] = []

  /** A Cluster client as the README recommends: an 'error' listener, no offline queue, one retry. */
  async function newClient (): Promise<Cluster> {
    const client = new Cluster(cluster.startupNodes, { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } })
    client.on('error', () => {})
    clients.push(client)
    await once(client, 'ready')
    return client
  }
  t.teardown(() => { for (const client of clients) client.disconnect() })
  const client = await newClient()
  const masters = (): ReturnType<Cluster['nodes']> => client.nodes('master')

  redisContract(t, {
    client,
    redisKey: clusterKey,
    flushScripts: async () => await Promise.all(masters().map(async (node) => await node.script('FLUSH')))
  })

  t.test('a user\'s token, session and refresh-lock keys share one slot, so one MGET reads them', async (t) => {
    const backend = redisBackend(client, { prefix: 'slot:' })
    const sessionHash = 'n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sbbDwcgg'
    for (const userId of ['u1@AdobeID', 'ünïcødé@AdobeID', 'a}b{c', '{braces}']) {
      const keys = { token: `tokens:${userId}`, session: `session:${b64(userId)}.${sessionHash}` }
      await backend.set(keys.token, 'token-record')
      await backend.set(keys.session, 'session-record')
      const lock = await backend.tryLock(`refresh:${userId}`, 5000)
      t.ok(lock)
      const redisKeys = [keys.token, keys.session, `lock:refresh:${userId}`].map((key) => clusterKey('slot:', key))
      t.equal(await client.get(redisKeys[0]!), 'token-record', `${userId}: the token record is at ${redisKeys[0]!}`)
      t.equal(await client.get(redisKeys[2]!), lock?.owner, 'the lock too')
      const slots = await Promise.all(redisKeys.map(async (key) => await client.cluster('KEYSLOT', key)))
      t.equal(new Set(slots).size, 1, `${userId}: one slot (${slots.join(', ')})`)
      t.same(redisKeys.map(keySlot), slots, 'keySlot agrees with CLUSTER KEYSLOT')
      t.same(await client.mget(redisKeys[0]!, redisKeys[1]!), ['token-record', 'session-record'], 'MGET of the token and session keys works')
      await lock?.release()
    }
    await backend.set('session:old-format-hash', 'old')
    t.equal(await client.get('slot:session:old-format-hash'), 'old', 'an old-format session (no user in it) is not tagged')
    await backend.set('flow:state-hash', 'flow')
    t.equal(await client.get('slot:flow:state-hash'), 'flow', 'nor is a flow record')
    await t.rejects(backend.set('{u}tokens:x', 'v'), RangeError, 'a key that could pose as a tagged one is refused')
    t.throws(() => redisBackend(client, { prefix: 'lr{x}:' }), { code: 'LR_INVALID_OPTION', option: 'prefix' }, 'a brace in the prefix would be the hash tag')
  })

  t.test('groupBySlot splits several users\' keys into one MGET per slot', async (t) => {
    const backend = redisBackend(client, { prefix: 'group:' })
    const keys = Array.from({ length: 40 }, (_, i) => i % 2 === 0 ? `tokens:user-${i >> 1}` : `session:${b64(`user-${i >> 1}`)}.h${i}`)
    for (const key of keys) await backend.set(key, `value of ${key}`)
    const redisKeys = keys.map((key) => clusterKey('group:', key))
    await t.rejects(client.mget(...redisKeys), /CROSSSLOT/, 'one MGET over several users\' slots is refused by the Cluster')
    const groups = groupBySlot(redisKeys)
    t.equal(groups.length, 20, 'one group per user')
    t.same(groups.flat().sort((a, b) => a - b), keys.map((_, i) => i), 'every position exactly once')
    const values: Array<string | null> = new Array(keys.length)
    await Promise.all(groups.map(async (positions) => {
      const answers = await client.mget(...positions.map((position) => redisKeys[position]!))
      positions.forEach((position, n) => { values[position] = answers[n] ?? null })
    }))
    t.same(values, keys.map((key) => `value of ${key}`), 'each answer back at its position')
    t.same(await backend.getMany!([...keys, 'tokens:nobody']), [...keys.map((key) => `value of ${key}`), undefined], 'getMany over many users\' slots: one MGET per slot, answers in order')
    t.same(await backend.getMany!([keys[0]!, keys[1]!]), [`value of ${keys[0]!}`, `value of ${keys[1]!}`], 'and one user\'s session and tokens in one MGET')
  })

  t.test('scan sees every record on every master, not one random node\'s', async (t) => {
    const backend = redisBackend(client, { prefix: 'many:' })
    const count = 2000
    for (let from = 0; from < count; from += 200) {
      await Promise.all(Array.from({ length: 200 }, async (_, i) => { await backend.set(`tokens:user-${from + i}`, 'v') }))
    }
    await backend.set('flow:x', 'v')
    const lock = await backend.tryLock('refresh:user-1', 5000)
    const perMaster = await Promise.all(masters().map(async (node) => await node.dbsize()))
    t.equal(perMaster.length, 3)
    t.ok(perMaster.every((size) => size > 0), `the records are spread over the 3 masters (${perMaster.join(', ')} keys)`)
    const found = await collect(backend.scan('tokens:'))
    t.equal(new Set(found).size, count, 'every record found')
    t.ok(found.every((key) => /^tokens:user-\d+$/.test(key)), 'as record keys, without prefix or tag')
    t.same(await collect(backend.scan('flow:')), ['flow:x'])
    t.equal((await collect(backend.scan(''))).length, count + 1, 'the lock key is never listed')
    await lock?.release()
  })

  t.test('a scan that cannot see every master fails instead of ending as if complete', async (t) => {
    const backend = redisBackend(client, { prefix: 'partial:' })
    await backend.set('tokens:u', 'v')
    const [first] = masters()
    // A master whose connection is gone: its SCAN would sit in ioredis's offline queue.
    const status = Object.getOwnPropertyDescriptor(first!, 'status')
    Object.defineProperty(first!, 'status', { value: 'reconnecting', configurable: true })
    await t.rejects(collect(backend.scan('')), { name: 'RedisBackendError', reason: 'not-ready', message: /SCAN on 127\.0\.0\.1:\d+: the connection is reconnecting/ })
    if (status === undefined) Reflect.deleteProperty(first!, 'status')
    else Object.defineProperty(first!, 'status', status)

    // The slots move to another master mid-scan (a failover, a resharding): keys may have been missed.
    const slots = client.slots
    let pages = 0
    await t.rejects(async () => {
      for await (const key of backend.scan('')) {
        t.ok(key)
        if (++pages === 1) client.slots = slots.map((owners, slot) => slot === 0 ? [`moved-${owners[0]!}`, ...owners.slice(1)] : owners)
      }
    }, { name: 'RedisBackendError', reason: 'topology-changed' })
    client.slots = slots
    t.same(await collect(backend.scan('')), ['tokens:u'], 'with the topology back, the scan completes')
  })

  t.test('the plugin on a Cluster: renewExpiring and reencryptAll report every record', async (t) => {
    const backend = redisBackend(client, { prefix: 'plugin:' })
    const users = Array.from({ length: 24 }, (_, i) => ({ sub: `user${i}@AdobeID`, email: `user${i}@example.com` }))
    const before = await harness({ backend, ims: { users } })
    t.teardown(before.close)
    for (const user of users) await signIn(before.app, { ims: before.ims, user })
    const tokenSlots = new Set(await Promise.all(users.map(async ({ sub }) => await client.cluster('KEYSLOT', clusterKey('plugin:', tokenKey(sub))))))
    t.ok(tokenSlots.size > 3, 'the users are spread over the slots')
    t.match(await before.app.lightroom.renewExpiring({ olderThanSeconds: 0 }), { scanned: 24, renewed: 24, failed: 0, loggedOut: 0 })
    await before.app.close()

    const after = await harness({ backend, sharedIms: before.ims, plugin: { store: encryptedStore(backend, { keys: [KEY_B, KEY_A] }) } })
    t.teardown(after.close)
    t.match(await after.app.lightroom.reencryptAll(), { scanned: 48, reencrypted: 48, failed: 0, completed: true }, 'every token and session record')
    t.match(await after.app.lightroom.reencryptAll(), { scanned: 48, reencrypted: 0, failed: 0, completed: true })
  })

  t.test('a master is killed and its replica promoted: nobody is signed out, and refreshes still happen once', async (t) => {
    const clock = fakeClock()
    const users = Array.from({ length: 6 }, (_, i) => ({ sub: `fail${i}@AdobeID`, email: `fail${i}@example.com` }))
    // Two app instances, each with its own Cluster client, sharing the Cluster; no local cache, so
    // every request really asks the Cluster.
    const apps: Harness[] = []
    for (let i = 0; i < 2; i++) {
      const backend = redisBackend(await newClient(), { prefix: 'failover:', localCacheMs: 0 })
      const h = await harness({ backend, sharedIms: apps[0]?.ims, ims: { users, now: clock.now }, plugin: { now: clock.now } })
      t.teardown(h.close)
      apps.push(h)
    }
    const [one, two] = apps as [Harness, Harness]
    const sessions: Array<{ cookie: string }> = []
    for (const user of users) sessions.push(await signIn(one.app, { ims: one.ims, user }))
    const tokens = await Promise.all(users.map(async ({ sub }) => (await one.store.get<TokenSet>(tokenKey(sub)))!.value.accessToken))

    const victim = await client.cluster('KEYSLOT', clusterKey('failover:', tokenKey(users[0]!.sub)))
    const { killedPort, promotedPort, promoted } = await cluster.killMaster(victim)
    const statuses = new Set<number>()
    const victimStatuses = new Set<number>()
    /** Each user's /token on both apps, until each answers 200 (503 while the slot has no master). */
    async function untilServed (): Promise<void> {
      const deadline = Date.now() + 20_000
      await Promise.all(sessions.flatMap(({ cookie }, i) => apps.map(async ({ app }) => {
        for (;;) {
          const response = await app.inject({ url: '/token', headers: { cookie } })
          statuses.add(response.statusCode)
          if (i === 0) victimStatuses.add(response.statusCode)
          if (response.statusCode === 200) return
          if (response.statusCode !== 503 || Date.now() > deadline) throw new Error(`answered ${response.statusCode}: ${response.body}`)
          await sleep(100)
        }
      })))
    }
    await untilServed()
    // The replica's promotion takes the node timeout (1 s) and an election: longer than a call's bound.
    t.ok(victimStatuses.has(503), 'the first user\'s requests went through the switch (503 while the slot had no master)')
    await promoted
    t.not(killedPort, promotedPort)
    t.equal(cluster.nodes.filter((node) => node.running).length, 5)
    await untilServed()
    t.notOk(statuses.has(401), `nobody was asked to sign in again (answers seen: ${[...statuses].join(', ')})`)
    const afterFailover = await Promise.all(users.map(async ({ sub }) => (await two.store.get<TokenSet>(tokenKey(sub)))?.value.accessToken))
    t.same(afterFailover, tokens, 'every token record is intact, and nothing was refreshed meanwhile')
    t.equal(one.ims.count('token:refresh_token'), 0)
    // Until the client has learned the new master of every slot, a scan fails rather than skip one.
    const scanFailures: string[] = []
    const scanDeadline = Date.now() + 10_000
    let listed: string[] | undefined
    while (listed === undefined) {
      listed = await collect(one.backend.scan('tokens:')).catch((error: Error & { reason?: string }) => {
        if (error.name !== 'RedisBackendError' || Date.now() > scanDeadline) throw error
        scanFailures.push(error.reason ?? '')
        return undefined
      })
      if (listed === undefined) await sleep(100)
    }
    t.same(listed, users.map(({ sub }) => tokenKey(sub)).sort(), `a scan after the failover lists every user (after ${scanFailures.length} refused attempts)`)

    // Past the access tokens' expiry: both apps, five requests each per user, at once.
    clock.advance(25 * 3600_000)
    const answers = await Promise.all(sessions.flatMap(({ cookie }) => apps.flatMap(({ app }) => Array.from({ length: 5 }, async () => await app.inject({ url: '/token', headers: { cookie } })))))
    t.ok(answers.every((answer) => answer.statusCode === 200), 'every request served')
    t.equal(one.ims.count('token:refresh_token'), users.length, 'exactly one refresh per user, across both apps')
    const refreshed = await Promise.all(users.map(async ({ sub }) => (await one.store.get<TokenSet>(tokenKey(sub)))!.value.accessToken))
    t.ok(refreshed.every((token, i) => token !== tokens[i]), 'each user has a new token')
  })
}

/**
 * The StoreBackend contract over a real redis-server, then the plugin on top of it: failures while
 * Redis is down or hung, recovery, and key rotation for a fleet.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { encryptedStore } from '../lib/store/encrypted.js'
import { RedisBackendError, redisBackend } from '../lib/store/redis.js'
import type { StoreBackend } from '../lib/store/types.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import { startRedisServer, redisUnavailableReason } from './helpers/redis-server.js'
import { everyOperation, signedInOver } from './helpers/backend-calls.js'
import { collect, redisContract } from './helpers/redis-contract.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'
import { COOKIE_SECRET, KEY_A, KEY_B, harness, rawRecords, signIn } from './helpers/setup.js'

await runUnlessUnavailable(redisUnavailableReason(), main)

async function main (): Promise<void> {
  const server = await startRedisServer()
  t.teardown(server.close)
  const connectionErrors: Error[] = []
  const clients: Redis[] = []

  /** A client as the README recommends: an 'error' listener, few retries, quick reconnects. */
  async function newClient (): Promise<Redis> {
    const client = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
    client.on('error', (error) => connectionErrors.push(error))
    clients.push(client)
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
    return client
  }
  t.teardown(() => { for (const client of clients) client.disconnect() })

  const client = await newClient()
  let prefixes = 0
  /** Each test gets its own prefix, so tests never see each other's keys. */
  const fresh = (options: { operationTimeoutMs?: number } = {}): { backend: StoreBackend, prefix: string } => {
    const prefix = `t${++prefixes}:`
    return { backend: redisBackend(client, { prefix, ...options }), prefix }
  }
  const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
  async function waitReady (redis: Redis): Promise<void> {
    const deadline = Date.now() + 5000
    while (redis.status !== 'ready') {
      if (Date.now() > deadline) throw new Error(`client still ${redis.status}`)
      await sleep(20)
    }
  }

  redisContract(t, { client, redisKey: (prefix, key) => prefix + key, flushScripts: async () => await client.script('FLUSH') })

  t.test('options and clients are checked up front', async (t) => {
    t.throws(() => redisBackend({} as Redis), { code: 'LR_INVALID_OPTION', option: 'client' })
    t.throws(() => redisBackend(null as unknown as Redis), { code: 'LR_INVALID_OPTION', option: 'client' })
    t.throws(() => redisBackend(client, { prefix: 5 as unknown as string }), { code: 'LR_INVALID_OPTION', option: 'prefix' })
    for (const operationTimeoutMs of [0, -5, NaN, Infinity]) {
      t.throws(() => redisBackend(client, { operationTimeoutMs }), { code: 'LR_INVALID_OPTION', option: 'operationTimeoutMs' })
    }
    const prefixed = new Redis(server.port, '127.0.0.1', { keyPrefix: 'app:', lazyConnect: true })
    t.throws(() => redisBackend(prefixed), { code: 'LR_INVALID_OPTION', option: 'client', message: /keyPrefix/ })
    prefixed.disconnect()
  })

  t.test('a Redis error is reported without the values of the command', async (t) => {
    const { backend, prefix } = fresh()
    await client.lpush(`${prefix}list`, 'not-a-string')
    const error = await backend.get('list').then(() => undefined, (err: unknown) => err)
    t.type(error, RedisBackendError)
    t.match(error, { reason: 'command-failed', code: 'LR_REDIS_UNAVAILABLE', message: /WRONGTYPE/ })
    const cas = await backend.compareAndSet('list', 'secret-expected', 'secret-value').then(() => undefined, (err: unknown) => err as Error)
    t.match(cas, { reason: 'command-failed' })
    t.notOk(JSON.stringify(cas).includes('secret') || String(cas?.message).includes('secret'), 'no argument in the error')
    t.equal((cas as Error).cause, undefined, "ioredis's error (which lists the arguments) is not attached")
  })

  t.test('whatever a client rejects with becomes a RedisBackendError', async (t) => {
    const stub = {
      status: 'ready',
      get: async () => { throw 'a bare string' }, // eslint-disable-line no-throw-literal
      set: async () => { throw new Error('OOM command not allowed') },
      evalsha: async () => { throw new Error('ERR something else') },
      eval: async () => { t.fail('EVAL is only the NOSCRIPT fallback') },
      scan: async () => await new Promise(() => {})
    }
    const backend = redisBackend(stub as unknown as Redis, { operationTimeoutMs: 50 })
    await t.rejects(backend.get('k'), { name: 'RedisBackendError', reason: 'command-failed', message: 'Redis GET failed: a bare string' })
    await t.rejects(backend.set('k', 'v'), { reason: 'command-failed', message: /OOM/ })
    await t.rejects(backend.compareAndDelete('k', 'v'), { reason: 'command-failed', message: /ERR something else/ })
    await t.rejects(collect(backend.scan('')), { name: 'RedisBackendError', reason: 'timeout' })
  })

  t.test('while Redis is stopped every call fails at once; after a restart everything is back', async (t) => {
    const redis = await newClient()
    const backend = redisBackend(redis, { prefix: 'outage:' })
    await backend.set('kept', 'value')
    const lock = await backend.tryLock('held', 60_000)
    await server.stop()
    await sleep(50)
    t.not(redis.status, 'ready')
    const calls = everyOperation(backend, lock)
    for (const [name, run] of calls) {
      const started = performance.now()
      const error = await run().then(() => undefined, (err: unknown) => err)
      const elapsed = performance.now() - started
      t.match(error, { name: 'RedisBackendError', reason: 'not-ready' }, `${name} rejects`)
      t.ok(elapsed < 50, `${name} rejects immediately (${elapsed.toFixed(1)} ms)`)
    }
    await server.start()
    await waitReady(redis)
    t.equal(await backend.get('kept'), 'value', 'nothing lost')
    t.equal(await lock?.extend(60_000), true, 'the lock survived too')
    await lock?.release()
    t.ok(connectionErrors.length > 0, 'ioredis reported the outage on its error listener')
  })

  t.test('a hung Redis makes each call reject after operationTimeoutMs, and recovers', async (t) => {
    const redis = await newClient()
    const backend = redisBackend(redis, { prefix: 'hung:', operationTimeoutMs: 300 })
    await backend.set('kept', 'value')
    server.pause()
    t.teardown(() => { server.resume() })
    for (const [name, run] of [
      ['get', async () => await backend.get('kept')],
      ['tryLock', async () => await backend.tryLock('l', 1000)]
    ] as const) {
      const started = performance.now()
      const error = await run().then(() => undefined, (err: unknown) => err)
      const elapsed = performance.now() - started
      t.match(error, { name: 'RedisBackendError', reason: 'timeout' }, `${name} rejects`)
      t.ok(elapsed >= 290 && elapsed < 600, `${name} rejects after about 300 ms (${elapsed.toFixed(0)} ms)`)
    }
    server.resume()
    // The timed-out commands still complete once Redis answers; the backend has already moved on.
    t.equal(await backend.get('kept'), 'value')
    // The lock that the timed-out SET NX took when Redis woke up was released by its owner value:
    // nobody waits out the TTL of a lock no one holds.
    const again = await backend.tryLock('l', 1000)
    t.ok(again, 'the lock is free at once')
    await again?.release()
  })

  t.test('the plugin over Redis: a stopped Redis is a fast 503 LR_STORE_UNAVAILABLE, then 200 again', async (t) => {
    const redis = await newClient()
    // No local cache: every request asks Redis (the next test covers what the cache changes).
    const backend = redisBackend(redis, { prefix: 'plugin:', localCacheMs: 0 })
    const { h, get } = await signedInOver(t, backend, { httpTimeoutMs: 2000 })
    const before = await get()
    t.equal(before.status, 200)
    await server.stop()
    await sleep(50)
    const started = performance.now()
    const during = await get()
    t.equal(during.status, 503)
    t.equal(during.code, 'LR_STORE_UNAVAILABLE', 'the session read failing is a 503, not a 500')
    t.ok(performance.now() - started < 100, 'answered at once')
    const token = await h.app.lightroom.tokenFor(h.ims.users[0]!.sub).then(() => undefined, (err: unknown) => err)
    t.match(token, { code: 'LR_STORE_UNAVAILABLE', statusCode: 503 })
    await server.start()
    await waitReady(redis)
    const after = await get()
    t.equal(after.status, 200, 'the same cookie works again: the session and tokens survived')
    t.equal(after.token, before.token)
  })

  t.test('a read in flight across a local delete does not put the deleted record back in the local cache', async (t) => {
    const redis = await newClient()
    const store = encryptedStore(redisBackend(redis, { prefix: 'race:' }), { keys: [KEY_A] })
    await store.set('session:x', { userId: 'u', createdAt: 1 })
    const inflight = store.get('session:x')
    await store.delete('session:x')
    await inflight
    t.equal(await redis.exists('race:session:x'), 0, 'deleted in Redis')
    t.equal(store.peek('session:x'), undefined, 'and not answered from the local cache')
  })

  t.test('the local cache answers the fast path for localCacheMs, then Redis is asked again; refresh decisions always ask Redis', async (t) => {
    const redis = await newClient()
    const backend = redisBackend(redis, { prefix: 'near:', localCacheMs: 300 })
    t.equal(backend.getSync!('absent'), undefined)
    await backend.set('k', 'v1')
    t.equal(backend.getSync!('k'), undefined, 'a write does not fill the cache: only reads of Redis do')
    t.equal(await backend.get('k'), 'v1')
    t.equal(backend.getSync!('k'), 'v1', 'read recently: answered locally')
    await redis.set('near:k', 'v2')
    t.equal(backend.getSync!('k'), 'v1', 'another process wrote: still the local answer, for at most localCacheMs')
    t.equal(await backend.get('k'), 'v2', 'get always asks Redis')
    t.equal(backend.getSync!('k'), 'v2')
    await sleep(320)
    t.equal(backend.getSync!('k'), undefined, 'older than localCacheMs: no local answer')
    await backend.get('k')
    await backend.delete('k')
    t.equal(backend.getSync!('k'), undefined, 'a local write or delete drops the local answer at once')
    t.throws(() => redisBackend(redis, { localCacheMs: -1 }), { code: 'LR_INVALID_OPTION', option: 'localCacheMs' })
    t.equal(redisBackend(redis, { localCacheMs: 0 }).getSync, undefined, 'localCacheMs 0: no synchronous answers at all')

    const { get } = await signedInOver(t, redisBackend(redis, { prefix: 'near-plugin:', localCacheMs: 300 }))
    t.equal((await get()).status, 200)
    await server.stop()
    t.equal((await get()).status, 200, 'Redis just went away: the fresh token read a moment ago still answers')
    await sleep(320)
    t.equal((await get()).code, 'LR_STORE_UNAVAILABLE', 'after localCacheMs: 503 until Redis is back')
    await server.start()
    await waitReady(redis)
    t.equal((await get()).status, 200)
  })

  t.test('an unreadable session record is treated as signed out, not as an error', async (t) => {
    const redis = await newClient()
    const backend = redisBackend(redis, { prefix: 'corrupt:' })
    const h = await harness({ backend })
    t.teardown(h.close)
    const browser = h.browser()
    await signIn(browser)
    const [sessionKey] = [...(await rawRecords(backend, 'session:')).keys()]
    await redis.set(`corrupt:${sessionKey!}`, 'v1.a.garbage.garbage.garbage')
    const response = await h.app.inject({ url: '/token', headers: { cookie: browser.cookieHeader() } })
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'LR_LOGIN_REQUIRED')
  })

  t.test('key rotation for the fleet: reencryptAll moves every record in Redis to the new key', async (t) => {
    const redis = await newClient()
    const backend = redisBackend(redis, { prefix: 'rotate:' })
    // The fleet before: key A only.
    const before = await harness({ backend, ims: { users: [{ sub: 'u1@AdobeID', email: 'u1@example.com' }, { sub: 'u2@AdobeID', email: 'u2@example.com' }] } })
    t.teardown(before.close)
    const cookies: string[] = []
    for (const sub of ['u1@AdobeID', 'u2@AdobeID']) {
      before.ims.signInAs(sub)
      const browser = before.browser()
      await signIn(browser)
      cookies.push(browser.cookieHeader())
    }
    const raw = await rawRecords(backend)
    t.equal(raw.size, 4, 'two token records and two sessions')
    t.ok([...raw.values()].every((value) => value.startsWith('v1.a.')))
    const tokens = await Promise.all(cookies.map(async (cookie) => (await before.app.inject({ url: '/token', headers: { cookie } })).json().token))
    await before.app.close()

    // Restarted with [B, A]: B encrypts, A still decrypts.
    const after = await harness({
      backend,
      sharedIms: before.ims,
      plugin: { cookieSecret: COOKIE_SECRET, store: encryptedStore(backend, { keys: [KEY_B, KEY_A] }) }
    })
    t.teardown(after.close)
    const first = await after.app.lightroom.reencryptAll()
    t.same(first, { scanned: 4, reencrypted: 4, failed: 0, completed: true, aborted: false })
    const rotated = await rawRecords(backend)
    t.same([...rotated.keys()].sort(), [...raw.keys()].sort(), 'the same records')
    t.ok([...rotated.values()].every((value) => value.startsWith('v1.b.')), 'every raw value in Redis names key B')
    const ttl = await redis.pttl(`rotate:${tokenKey('u1@AdobeID')}`)
    t.ok(ttl > 13 * 86_400_000, `the records keep their expiry (${ttl} ms left)`)
    t.same(await after.app.lightroom.reencryptAll(), { scanned: 4, reencrypted: 0, failed: 0, completed: true, aborted: false }, 'a second run has nothing to do')
    for (const [i, cookie] of cookies.entries()) {
      const response = await after.app.inject({ url: '/token', headers: { cookie } })
      t.equal(response.statusCode, 200, 'sessions survive the rotation')
      t.equal(response.json().token, tokens[i])
    }
    // Only key B now: everything still reads.
    const onlyB = await harness({ backend, sharedIms: before.ims, plugin: { store: encryptedStore(backend, { keys: [KEY_B] }) } })
    t.teardown(onlyB.close)
    t.equal((await onlyB.app.inject({ url: '/token', headers: { cookie: cookies[0]! } })).statusCode, 200, 'key A can be retired')
  })
}

/**
 * One Redis round trip per signed-in request, over a real redis-server: getMany is one MGET (what
 * Redis itself receives, seen through MONITOR), keeps the local cache's rules, and a request with
 * `localCacheMs: 0` reads its session and tokens with that one command, with every sign-out still
 * seen at once.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { encryptedStore } from '../lib/store/encrypted.js'
import { redisBackend } from '../lib/store/redis.js'
import { startRedisServer, redisUnavailableReason } from './helpers/redis-server.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'
import { APP_ORIGIN, KEY_A, harness, signIn } from './helpers/setup.js'
import { LOGOUT } from './helpers/flows.js'

await runUnlessUnavailable(redisUnavailableReason(), main)

async function main (): Promise<void> {
  const server = await startRedisServer()
  t.teardown(server.close)
  const clients: Redis[] = []
  async function newClient (): Promise<Redis> {
    const client = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 })
    client.on('error', () => {})
    clients.push(client)
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
    return client
  }
  t.teardown(() => { for (const client of clients) client.disconnect() })

  /**
   * The commands Redis executes that touch keys under `prefix`, as Redis's MONITOR reports them.
   * MONITOR lists commands in the order Redis runs them, so once a marker sent after the work
   * shows up, everything the work sent has been listed.
   */
  async function commandsSeenBy (prefix: string, work: () => Promise<void>): Promise<string[]> {
    const monitor = await (await newClient()).monitor()
    const seen: string[][] = []
    monitor.on('monitor', (_time: string, args: string[]) => { seen.push(args) })
    try {
      await work()
      const marker = `${prefix}--marker--`
      const probe = await newClient()
      await probe.get(marker)
      const deadline = Date.now() + 5000
      while (!seen.some((args) => args.includes(marker))) {
        if (Date.now() > deadline) throw new Error('MONITOR never showed the marker')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      return seen.filter((args) => !args.includes(marker) && args.slice(1).some((arg) => arg.startsWith(prefix)))
        .map((args) => args[0]!.toUpperCase())
    } finally {
      monitor.disconnect()
    }
  }

  t.test('getMany is one MGET, answers in order, absent keys undefined', async (t) => {
    const client = await newClient()
    const backend = redisBackend(client, { prefix: 'many:', localCacheMs: 0 })
    await backend.set('a', '1')
    await backend.set('c', '3')
    let values: Array<string | undefined> = []
    const commands = await commandsSeenBy('many:', async () => { values = await backend.getMany!(['c', 'b', 'a']) })
    t.same(values, ['3', undefined, '1'])
    t.same(commands, ['MGET'], 'one command for three keys')
    t.same(await backend.getMany!([]), [], 'no keys: no command (MGET needs one)')
  })

  t.test('reads asked for in one turn of the event loop share one MGET, each with its own answers', async (t) => {
    const client = await newClient()
    const backend = redisBackend(client, { prefix: 'turn:', localCacheMs: 0 })
    for (let i = 0; i < 30; i++) await backend.set(`k${i}`, `v${i}`)
    let answers: Array<Array<string | undefined>> = []
    const commands = await commandsSeenBy('turn:', async () => {
      answers = await Promise.all(Array.from({ length: 30 }, async (_, i) => await backend.getMany!([`k${i}`, `missing${i}`, `k${(i + 1) % 30}`])))
    })
    t.same(commands, ['MGET'], '30 requests\' reads: one command')
    t.same(answers, Array.from({ length: 30 }, (_, i) => [`v${i}`, undefined, `v${(i + 1) % 30}`]), 'every caller gets its own keys, in its order')
    // A turn bigger than one MGET is split; every caller is still answered.
    const many = await Promise.all(Array.from({ length: 300 }, async (_, i) => await backend.getMany!([`k${i % 30}`, `k${(i + 7) % 30}`])))
    t.same(many, Array.from({ length: 300 }, (_, i) => [`v${i % 30}`, `v${(i + 7) % 30}`]))
    // Each read still goes to Redis after it was asked for: a write before it is seen.
    const write = backend.set('k0', 'changed')
    const read = backend.getMany!(['k0'])
    await write
    t.same(await read, ['changed'], 'sent after the write that came first')
  })

  t.test('a coalesced MGET that fails fails every read in it, as a 503-able RedisBackendError', async (t) => {
    const client = await newClient()
    const backend = redisBackend(client, { prefix: 'fail:', localCacheMs: 0 })
    const failing = Object.create(client) as Redis
    failing.mget = (async () => { throw new Error('LOADING Redis is loading the dataset in memory') }) as unknown as Redis['mget']
    Object.defineProperty(failing, 'status', { get: () => client.status })
    const broken = redisBackend(failing, { prefix: 'fail:', localCacheMs: 0 })
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, async () => await broken.getMany!(['a', 'b'])))
    t.ok(outcomes.every((outcome) => outcome.status === 'rejected' && (outcome.reason as Error).name === 'RedisBackendError'), 'each read rejects with the backend error')
    t.same(await backend.getMany!(['a']), [undefined], 'and the real client is unaffected')
  })

  t.test('getMany fills the local cache like get, and a read in flight across a local delete does not bring the record back', async (t) => {
    const client = await newClient()
    const backend = redisBackend(client, { prefix: 'cache:', localCacheMs: 60_000 })
    await backend.set('a', '1')
    await backend.set('b', '2')
    t.same(await backend.getMany!(['a', 'b']), ['1', '2'])
    t.equal(backend.getSync!('a'), '1', 'read recently: answered locally')
    const store = encryptedStore(redisBackend(client, { prefix: 'race:' }), { keys: [KEY_A] })
    await store.set('session:x', { userId: 'u', createdAt: 1 })
    await store.set('tokens:u', { userId: 'u' })
    const inflight = store.getMany(['session:x', 'tokens:u'])
    await store.delete('session:x')
    const answers = await inflight
    t.ok(answers.every((answer) => answer.readable))
    t.equal(await client.exists('race:session:x'), 0, 'deleted in Redis')
    t.equal(store.peek('session:x'), undefined, 'and not answered from the local cache')
    t.equal(store.peek('tokens:u'), undefined, 'nor is anything else that MGET read while the write happened')
  })

  t.test('with localCacheMs: 0 a signed-in request costs exactly one Redis command, and a sign-out elsewhere is seen at once', async (t) => {
    const client = await newClient()
    const backend = redisBackend(client, { prefix: 'app:', localCacheMs: 0 })
    const h = await harness({ backend })
    t.teardown(h.close)
    const browser = h.browser()
    await signIn(browser)
    const cookie = browser.cookieHeader()
    const first = await h.app.inject({ url: '/token', headers: { cookie } })
    t.equal(first.statusCode, 200)
    let status = 0
    const commands = await commandsSeenBy('app:', async () => {
      status = (await h.app.inject({ url: '/token', headers: { cookie } })).statusCode
    })
    t.equal(status, 200)
    t.same(commands, ['MGET'], 'the session and the tokens in one round trip')

    // Another instance on the same Redis signs the user out (another browser's logout).
    const other = await harness({ backend: redisBackend(await newClient(), { prefix: 'app:', localCacheMs: 0 }), sharedIms: h.ims })
    t.teardown(other.close)
    const elsewhere = other.browser()
    await signIn(elsewhere)
    t.equal((await elsewhere.request('POST', LOGOUT, { headers: { origin: APP_ORIGIN } })).status, 303)
    const after = await h.app.inject({ url: '/token', headers: { cookie } })
    t.equal(after.statusCode, 401, 'the session from before the sign-out is dead on this instance at once')
  })
}
